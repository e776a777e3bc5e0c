// Summarises a V8 .heapsnapshot: self size by node type and by constructor, the largest strings,
// code (bytecode, SharedFunctionInfos) by script, and retained sizes (dominator tree) of the largest
// objects that are not roots. node bench/heap-summary.mjs FILE [--json OUT]
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
const snap = JSON.parse(readFileSync(file, 'utf8'));
const meta = snap.snapshot.meta;
const NF = meta.node_fields.length, EF = meta.edge_fields.length;
const nTypes = meta.node_fields.indexOf('type'), nName = meta.node_fields.indexOf('name'), nSelf = meta.node_fields.indexOf('self_size'), nEdges = meta.node_fields.indexOf('edge_count'), nId = meta.node_fields.indexOf('id');
const eType = meta.edge_fields.indexOf('type'), eName = meta.edge_fields.indexOf('name_or_index'), eTo = meta.edge_fields.indexOf('to_node');
const nodeTypes = meta.node_types[0], edgeTypes = meta.edge_types[0];
const { nodes, edges, strings } = snap;
const count = nodes.length / NF;
const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += nodes[i * NF + nEdges] * EF; firstEdge[i + 1] = e; }
const type = (i) => nodeTypes[nodes[i * NF + nTypes]];
const name = (i) => strings[nodes[i * NF + nName]];
const self = (i) => nodes[i * NF + nSelf];
let total = 0;
const byType = {}, byCtor = {};
for (let i = 0; i < count; i++) {
  const s = self(i); total += s;
  const t = type(i); byType[t] = (byType[t] ?? 0) + s;
  const key = t === 'object' || t === 'closure' || t === 'code' || t === 'hidden' || t === 'array' || t === 'object shape' ? `${t}:${name(i).slice(0, 60)}` : t;
  byCtor[key] = (byCtor[key] ?? 0) + s;
}
const MB = (x) => (x / 1048576).toFixed(2);
console.log(`${file}: ${count} nodes, self sizes total ${MB(total)} MB`);
console.log('by type:', Object.entries(byType).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${MB(v)}`).join(', '));
console.log('by type:constructor (top 40, MB):');
for (const [k, v] of Object.entries(byCtor).sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${MB(v)}  ${k}`);
const strs = [];
for (let i = 0; i < count; i++) { const t = type(i); if ((t === 'string' || t === 'concatenated string' || t === 'sliced string') && self(i) > 32768) strs.push([self(i), name(i).slice(0, 70).replace(/\s+/g, ' ')]); }
console.log('strings over 32 KB:'); for (const [s, n] of strs.sort((a, b) => b[0] - a[0]).slice(0, 10)) console.log(`  ${MB(s)}  ${JSON.stringify(n)}`);

// Dominators (Cooper, Harvey, Kennedy), root = node 0, ignoring weak edges.
const order = new Int32Array(count).fill(-1), post = [];
{ const stack = [0], it = new Uint32Array(count); order[0] = -2;
  while (stack.length) { const n = stack[stack.length - 1]; let pushed = false;
    for (let e = firstEdge[n] + it[n] * 1; e < firstEdge[n + 1]; e += EF) { it[n] += EF; if (edgeTypes[edges[e + eType]] === 'weak') continue; const to = edges[e + eTo] / NF; if (order[to] === -1) { order[to] = -2; stack.push(to); pushed = true; break; } }
    if (!pushed) { stack.pop(); order[n] = post.length; post.push(n); } } }
const preds = Array.from({ length: count }, () => []);
for (let n = 0; n < count; n++) { if (order[n] < 0) continue; for (let e = firstEdge[n]; e < firstEdge[n + 1]; e += EF) { if (edgeTypes[edges[e + eType]] === 'weak') continue; const to = edges[e + eTo] / NF; if (order[to] >= 0) preds[to].push(n); } }
const idom = new Int32Array(count).fill(-1); idom[0] = 0;
const intersect = (a, b) => { while (a !== b) { while (order[a] < order[b]) a = idom[a]; while (order[b] < order[a]) b = idom[b]; } return a; };
for (let changed = true; changed;) { changed = false;
  for (let k = post.length - 1; k >= 0; k--) { const n = post[k]; if (n === 0) continue; let d = -1;
    for (const p of preds[n]) if (idom[p] !== -1) d = d === -1 ? p : intersect(p, d);
    if (d !== -1 && idom[n] !== d) { idom[n] = d; changed = true; } } }
const retained = new Float64Array(count);
for (const n of post) { retained[n] += self(n); if (n !== 0 && idom[n] >= 0) retained[idom[n]] += retained[n]; }
const label = (i) => `${type(i)}:${name(i).slice(0, 60).replace(/\s+/g, ' ')} @${nodes[i * NF + nId]}`;
const big = [];
for (let i = 1; i < count; i++) if (order[i] >= 0 && type(i) !== 'synthetic' && retained[i] > 100_000) big.push(i);
big.sort((a, b) => retained[b] - retained[a]);
// keep only the outermost of nested big ones, reporting children of the first few
const chain = (i) => { const c = []; let d = idom[i]; while (d > 0 && c.length < 4) { c.push(label(d)); d = idom[d]; } return c.join(' < '); };
console.log('largest retained (MB, dominated by):');
for (const i of big.slice(0, 45)) console.log(`  ${MB(retained[i])}  ${label(i)}   <- ${chain(i)}`);
const childrenOf = process.argv.indexOf('--children');
if (childrenOf > 0) {
  for (const wanted of process.argv[childrenOf + 1].split(',').map(Number)) {
    let at = -1; for (let i = 0; i < count; i++) if (nodes[i * NF + nId] === wanted) { at = i; break; }
    const named = new Map(); for (let e = firstEdge[at]; e < firstEdge[at + 1]; e += EF) { const t = edgeTypes[edges[e + eType]]; named.set(edges[e + eTo] / NF, t === 'element' || t === 'hidden' ? `[${edges[e + eName]}]` : strings[edges[e + eName]]); }
    const kids = []; for (let i = 0; i < count; i++) if (idom[i] === at && i !== at) kids.push(i);
    kids.sort((a, b) => retained[b] - retained[a]);
    console.log(`dominated by ${label(at)} (${MB(retained[at])} MB), largest:`);
    for (const k of kids.slice(0, 25)) console.log(`  ${MB(retained[k])}  ${named.get(k) ?? '(indirect)'} -> ${label(k)}`);
  }
}
if (process.argv[3] === '--json') writeFileSync(process.argv[4], JSON.stringify({ file, total, byType, byCtor: Object.fromEntries(Object.entries(byCtor).sort((a, b) => b[1] - a[1]).slice(0, 200)), big: big.slice(0, 200).map((i) => ({ label: label(i), retained: retained[i], by: chain(i) })) }, null, 1));
