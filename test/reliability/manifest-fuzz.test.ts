// Property-based tests of manifest validation over generated and mutated files: the real
// manifests of the corpus (and manifests.d) truncated, retyped, sprinkled with control characters,
// invalid UTF-8, BOMs, CRLF and tabs, nested deep, aliased into bombs, merged, tagged, duplicated,
// repeated into many documents, and grown to the size limit. Whatever the input, validation (the
// loader the agent and `podvisor validate` use) never throws or trips over itself, costs bounded
// time and memory, names a line and a field for every refusal, and prints no raw control
// character. CI runs a fixed seed; PODVISOR_FUZZ_SEED and PODVISOR_FUZZ_RUNS run others, larger.
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { isManifestName } from '../../src/manifest/directory-source.js';
import { loadManifestFile, MAX_MANIFEST_BYTES, validateManifestText, type FileResult } from '../../src/manifest/load-file.js';
import { YAML_LIMITS } from '../../src/manifest/parse.js';
import { formatFinding } from '../../src/manifest/validate.js';

const SEED = Number(process.env.PODVISOR_FUZZ_SEED ?? 20261203);
/** Inputs over all properties (the large files come on top). */
const RUNS = Number(process.env.PODVISOR_FUZZ_RUNS ?? 10_000);
/** Generous bounds, far above what any input costs here: a hang or a blow-up, not a slow machine. */
const MAX_MS_PER_INPUT = 10_000;
const MAX_HEAP_GROWTH_MB = 200;

const here = dirname(fileURLToPath(import.meta.url));
const seedDirs = [resolve(here, '../fixtures/corpus/real-pods'), resolve(here, '../../manifests.d')];
const SEEDS = seedDirs.flatMap((dir) => readdirSync(dir).filter(isManifestName).sort().map((name) => readFileSync(join(dir, name), 'utf8')));

// What escape.ts escapes: C0 and C1 controls, DEL, the bidirectional overrides.
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** Refusals of a whole file or document, which have no field to name. */
const DOCUMENT_LEVEL = /^(YAML: |a manifest document must be a mapping|the file holds no Pod documents|invalid UTF-8|and \d+ more finding)/;

/** The figures the run reports. */
const figures = { inputs: 0, refused: 0, accepted: 0, maxMs: 0, maxMsBytes: 0, slowest: '' };

/** Checks one result against every property; returns nothing, asserts through `fail`. */
function checkResult(result: Omit<FileResult, 'mtimeMs' | 'size'>, input: string, ms: number, label: string): void {
  figures.inputs++;
  if (result.hasErrors) figures.refused++;
  else figures.accepted++;
  if (ms > figures.maxMs) Object.assign(figures, { maxMs: ms, maxMsBytes: Buffer.byteLength(input), slowest: label });
  const lines = input.split(/\r\n|\r|\n/).length + 1;
  if (ms > MAX_MS_PER_INPUT) throw new Error(`${label}: took ${ms.toFixed(0)} ms`);
  if (result.hasErrors !== result.findings.some((finding) => finding.severity === 'error')) throw new Error(`${label}: hasErrors disagrees with the findings`);
  for (const finding of result.findings) {
    const line = formatFinding(finding);
    // A defect of validation is caught and becomes a finding: that must never happen.
    if (/cannot (validate|parse):/.test(finding.message)) throw new Error(`${label}: validation failed on its own: ${line}`);
    if (!Number.isInteger(finding.line) || !Number.isInteger(finding.column) || finding.line < 1 || finding.column < 1 || finding.line > lines) {
      throw new Error(`${label}: finding without a line in the file: ${line}`);
    }
    if (finding.severity === 'error' && finding.field === '' && !DOCUMENT_LEVEL.test(finding.message)) throw new Error(`${label}: refusal names no field: ${line}`);
    if (RAW_CONTROL.test(line)) throw new Error(`${label}: raw control character in ${JSON.stringify(line)}`);
    if (!/^x\.yaml:\d+:\d+: /.test(line) && !line.startsWith(`${result.path}:`)) throw new Error(`${label}: not file:line:col: ${line}`);
  }
  for (const pod of result.pods) if (!/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(pod.key)) throw new Error(`${label}: pod key ${JSON.stringify(pod.key)}`);
}

/** Validates text as the loader does after reading and decoding, and checks the properties. */
function validateText(text: string, label: string): void {
  const started = performance.now();
  const result = validateManifestText(text, 'x.yaml', { nodeName: 'fuzz' });
  checkResult(result, text, performance.now() - started, label);
}

// ---- Arbitraries -----------------------------------------------------------------------------

const seedText = fc.constantFrom(...SEEDS);
const position = (text: string, at: number) => (text.length === 0 ? 0 : at % (text.length + 1));

/** Values that break types and ranges. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(1e308, -1, -(2 ** 63), 2 ** 64, 0, -0, 1.5, Number.MAX_SAFE_INTEGER + 2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0o644, 65536),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', '../../etc/passwd', '/abs', '0644', '0o644', '-1', '-1Gi', '1e400', 'NaN', '.inf', 'yes', '\u202e', '\u001b[31m', '\u0000', '', ' ', 'a'.repeat(300), 'example.com/a', 'UPPER'),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'name', 'image', 'exec', 'httpGet'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
);
const hostileKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '', ' ', 'Image', 'imagePullPolcy', 'a/b/c', '-x', 'x'.repeat(70)), fc.string({ unit: 'binary', maxLength: 12 }));
/** Text dropped in at random: control and format characters, line endings, YAML indicators. */
const hostileSnippet = fc.oneof(
  fc.constantFrom('\t', '\r\n', '\r', '\u0000', '\u0007', '\u001b[2J', '\u007f', '\u0085', '\u00a0', '\u2028', '\u202e', '\ufeff', '\ufffe', '\ud800', '"', "'", '\\', '#', '&a ', '*a', '<<: *a\n', '!foo ', '!!binary ', '%YAML 1.2\n---\n', '{', '[', ']', '}', ': ', '- ', '---\n', '...\n', '? ', '|', '>', '@', '`'),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

/** Every path to a value in a plain structure. */
function paths(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((item, index) => paths(item, [...at, index], out));
  else if (typeof value === 'object' && value !== null) for (const [key, child] of Object.entries(value)) paths(child, [...at, key], out);
  return out;
}

/** Sets (or renames the key at) a path in a copy of a structure. */
function mutateAt(root: unknown, path: (string | number)[], change: { value?: unknown; key?: string }): unknown {
  if (path.length === 0) return change.value === undefined ? root : change.value;
  const copy: unknown = structuredClone(root);
  let node = copy as Record<string | number, unknown>;
  for (const segment of path.slice(0, -1)) node = node[segment] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (change.key !== undefined && !Array.isArray(node)) {
    const value = node[last];
    delete node[last];
    Object.defineProperty(node, change.key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    node[last] = change.value;
  }
  return copy;
}

/** A real manifest with one value of any field replaced, or one key renamed. */
const retyped = fc.tuple(seedText, fc.nat(), fc.oneof(hostileValue.map((value) => ({ value })), hostileKey.map((key) => ({ key })))).map(([text, pick, change]) => {
  let value: unknown;
  try {
    value = parse(text.split(/^---$/m).find((part) => part.includes('kind: Pod')) ?? text);
  } catch {
    return text;
  }
  const all = paths(value);
  const path = all[pick % all.length] ?? [];
  try {
    return stringify(mutateAt(value, path, change));
  } catch {
    return text;
  }
});

const truncated = fc.tuple(seedText, fc.nat()).map(([text, at]) => text.slice(0, position(text, at)));
const inserted = fc.tuple(seedText, fc.array(fc.tuple(fc.nat(), hostileSnippet), { minLength: 1, maxLength: 5 })).map(([text, edits]) => {
  let out = text;
  for (const [at, snippet] of edits) {
    const where = position(out, at);
    out = out.slice(0, where) + snippet + out.slice(where);
  }
  return out;
});
const reformatted = fc.tuple(seedText, fc.constantFrom('crlf', 'cr', 'tabs', 'bom', 'bom-each-line', 'trailing-spaces', 'no-final-newline', 'nbsp-indent')).map(([text, how]) => {
  switch (how) {
    case 'crlf': return text.replace(/\n/g, '\r\n');
    case 'cr': return text.replace(/\n/g, '\r');
    case 'tabs': return text.replace(/^( {2})+/gm, (indent) => '\t'.repeat(indent.length / 2));
    case 'bom': return `\ufeff${text}`;
    case 'bom-each-line': return text.replace(/^/gm, '\ufeff');
    case 'trailing-spaces': return text.replace(/$/gm, '   ');
    case 'no-final-newline': return text.trimEnd();
    default: return text.replace(/^ {2}/gm, '\u00a0\u00a0');
  }
});
const tagged = fc.tuple(seedText, fc.nat(), fc.constantFrom('!foo ', '!!str ', '!!int ', '!!float ', '!!bool ', '!!null ', '!!binary ', '!!timestamp ', '!!set ', '!!omap ', '!!map ', '!!seq ', '!<tag:yaml.org,2002:str> ', '!<!> ', '!e!x ')).map(([text, pick, tag]) => {
  const spots = [...text.matchAll(/: (?=\S)/g)].map((match) => match.index + 2);
  const at = spots.length > 0 ? spots[pick % spots.length]! : 0;
  return text.slice(0, at) + tag + text.slice(at);
});
const duplicated = fc.tuple(seedText, fc.nat()).map(([text, pick]) => {
  const lines = text.split('\n');
  const index = pick % lines.length;
  lines.splice(index, 0, lines[index]!);
  return lines.join('\n');
});

const POD = (name: string, extra = '') => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.25\n${extra}`;
const nested = fc.tuple(fc.integer({ min: 1, max: 200 }), fc.constantFrom('flow-seq', 'flow-map', 'block-map', 'block-seq', 'mixed')).map(([depth, style]) => {
  switch (style) {
    case 'flow-seq': return POD('deep', `    args: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    case 'flow-map': return POD('deep', `    env: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`);
    case 'block-map': return POD('deep', Array.from({ length: depth }, (_, level) => `${'  '.repeat(level + 2)}k:\n`).join('').replace(/^ {4}/, '    x:\n    '));
    case 'block-seq': return POD('deep', `    args:\n${Array.from({ length: depth }, (_, level) => `${'  '.repeat(level + 2)}-\n`).join('')}`);
    default: return `a: ${'[{b: '.repeat(depth)}1${'}]'.repeat(depth)}\n`;
  }
});
const aliasBomb = fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.constantFrom('labels', 'args', 'root')).map(([levels, width, where]) => {
  const rows = [`a0: &a0 [${Array.from({ length: width }, () => 'x').join(',')}]`];
  for (let level = 1; level <= levels; level++) rows.push(`a${level}: &a${level} [${Array.from({ length: width }, () => `*a${level - 1}`).join(',')}]`);
  if (where === 'root') return `${rows.join('\n')}\n`;
  if (where === 'labels') return POD('bomb').replace('  name: bomb\n', `  name: bomb\n  labels:\n${rows.map((row) => `    ${row}`).join('\n')}\n`);
  return `${POD('bomb', `    args: *a${levels}\n`)}x:\n${rows.map((row) => `  ${row}`).join('\n')}\n`.replace(/^x:\n/m, 'x: &anchors\n').replace('    args: *a', '    args: *a');
});
const merged = fc.tuple(fc.constantFrom('map', 'list', 'scalar', 'self', 'override', 'missing'), fc.boolean()).map(([kind, quoteKey]) => {
  const key = quoteKey ? '"<<"' : '<<';
  const base = 'apiVersion: v1\nkind: Pod\nmetadata: {name: merged}\nspec:\n  containers:\n  - &c {name: a, image: "nginx:1.25", ports: [{containerPort: 80, hostPort: 8080}]}\n';
  switch (kind) {
    case 'map': return `${base}  - ${key}: *c\n    name: b\n`;
    case 'list': return `${base}  - ${key}: [*c, {image: "redis:7"}]\n    name: b\n`;
    case 'scalar': return `${base}  - ${key}: 5\n    name: b\n`;
    case 'self': return 'a: &a\n  <<: *a\n';
    case 'override': return `${base}  - ${key}: *c\n    name: b\n    ports: []\n`;
    default: return `${base}  - ${key}: *nowhere\n    name: b\n`;
  }
});
const manyDocuments = fc.tuple(fc.integer({ min: 1, max: YAML_LIMITS.maxDocuments + 50 }), fc.boolean()).map(([count, sameName]) =>
  Array.from({ length: count }, (_, index) => POD(sameName ? 'same' : `p${index}`, `    ports: [{containerPort: 80, hostPort: ${8000 + (index % 7)}}]\n`)).join('---\n'));

/** Bytes no text editor should produce: invalid UTF-8, UTF-16 with and without its BOM, lone surrogates. */
const hostileBytes = fc.tuple(seedText, fc.nat(), fc.constantFrom('invalid-byte', 'overlong', 'surrogate', 'truncated-sequence', 'utf16le', 'utf16be', 'utf16-no-bom', 'utf16-odd', 'utf8-bom', 'latin1')).map(([text, at, how]) => {
  const bytes = Buffer.from(text, 'utf8');
  const where = bytes.length === 0 ? 0 : at % bytes.length;
  const splice = (insert: number[]) => Buffer.concat([bytes.subarray(0, where), Buffer.from(insert), bytes.subarray(where)]);
  switch (how) {
    case 'invalid-byte': return splice([0xff]);
    case 'overlong': return splice([0xc0, 0xaf]);
    case 'surrogate': return splice([0xed, 0xa0, 0x80]);
    case 'truncated-sequence': return Buffer.concat([bytes, Buffer.from([0xe2, 0x82])]);
    case 'utf16le': return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    case 'utf16be': return Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]);
    case 'utf16-no-bom': return Buffer.from(text, 'utf16le');
    case 'utf16-odd': return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le'), Buffer.from([0x41])]);
    case 'utf8-bom': return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    default: return Buffer.from(text.replace(/e/g, 'é'), 'latin1');
  }
});

// ---- Properties ------------------------------------------------------------------------------

const gc = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();
const prototypeKeys = () => Object.getOwnPropertyNames(Object.prototype).sort().join(',');
const prototypeBefore = prototypeKeys();
gc();
const heapBefore = process.memoryUsage().heapUsed;
const startedAt = performance.now();

/** Runs a property over `share` of the runs, with the run's seed. */
function check(t: { pass(message: string): void }, name: string, share: number, arbitrary: fc.Arbitrary<string>): void {
  const numRuns = Math.max(1, Math.round(RUNS * share));
  fc.assert(fc.property(arbitrary, (text) => validateText(text, name)), { seed: SEED, numRuns, endOnFailure: true });
  t.pass(`${name}: ${numRuns} inputs`);
}

t.test('validation never throws, always places its findings, never prints raw control characters', async (t) => {
  check(t, 'retyped field', 0.27, retyped);
  check(t, 'truncated', 0.1, truncated);
  check(t, 'inserted characters', 0.15, inserted);
  check(t, 'reformatted (CRLF, tabs, BOMs)', 0.05, reformatted);
  check(t, 'custom tags', 0.05, tagged);
  check(t, 'duplicated line', 0.05, duplicated);
  check(t, 'deep nesting', 0.04, nested);
  check(t, 'alias bombs', 0.04, aliasBomb);
  check(t, 'merge keys', 0.02, merged);
  // Up to a thousand documents each: few runs, each is the cost of a full directory.
  check(t, 'many documents', 0.002, manyDocuments);
  check(t, 'combined mutations', 0.13, fc.tuple(retyped, fc.array(fc.tuple(fc.nat(), hostileSnippet), { maxLength: 3 }), fc.nat()).map(([text, edits, cut]) => {
    let out = text;
    for (const [at, snippet] of edits) out = out.slice(0, position(out, at)) + snippet + out.slice(position(out, at));
    return cut % 3 === 0 ? out.slice(0, position(out, cut)) : out;
  }));
});

t.test('bytes that are not UTF-8 text are refused at their line, through the file loader', async (t) => {
  const dir = t.testdir({});
  const numRuns = Math.max(1, Math.round(RUNS * 0.1));
  let index = 0;
  await fc.assert(fc.asyncProperty(hostileBytes, async (bytes) => {
    const path = join(dir, `case${index++ % 8}.yaml`);
    await writeFile(path, bytes);
    const started = performance.now();
    const result = await loadManifestFile(path, { nodeName: 'fuzz', displayName: 'x.yaml' });
    checkResult(result, bytes.toString('utf8'), performance.now() - started, 'bytes');
    if (result.readError !== undefined) throw new Error(`read error ${result.readError}`);
  }), { seed: SEED, numRuns, endOnFailure: true });
  t.pass(`hostile bytes: ${numRuns} inputs`);
});

t.test('files up to the size limit: time and memory per file', async (t) => {
  const big = (fill: (index: number) => string, head: string) => {
    const parts = [head];
    let bytes = Buffer.byteLength(head);
    for (let index = 0; bytes < MAX_MANIFEST_BYTES - 200; index++) {
      parts.push(fill(index));
      bytes += Buffer.byteLength(parts[parts.length - 1]!);
    }
    return parts.join('').slice(0, MAX_MANIFEST_BYTES - 200);
  };
  const cases: [string, string][] = [
    ['annotations to 1 MiB', big((index) => `    k${index}: ${'v'.repeat(80)}\n`, POD('big').replace('  name: big\n', '  name: big\n  annotations:\n'))],
    ['one long value of 1 MiB', POD('long', `    args: ["${'a'.repeat(MAX_MANIFEST_BYTES - 300)}"]\n`)],
    ['unknown fields to 1 MiB', big((index) => `  x${index}: ${index}\n`, POD('unknown'))],
    ['documents to the limit', Array.from({ length: YAML_LIMITS.maxDocuments }, (_, index) => POD(`p${index}`)).join('---\n')],
    ['control characters escaped, 1 MiB', POD('ctl', `    args: ["${'\\e\\x85\\u202e'.repeat(60_000)}"]\n`)],
    ['a flow list at the node limit', POD('flow', `    args: [${'"1",'.repeat(YAML_LIMITS.maxNodes - 40)}"1"]\n`)],
  ];
  const rows: string[] = [];
  for (const [name, text] of cases) {
    t.ok(Buffer.byteLength(text) <= MAX_MANIFEST_BYTES, `${name}: within the size limit`);
    gc();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const result = validateManifestText(text, 'x.yaml', { nodeName: 'fuzz' });
    const ms = performance.now() - started;
    const rssAfter = process.memoryUsage().rss;
    checkResult(result, text, ms, name);
    rows.push(`${name}: ${Buffer.byteLength(text)} bytes, ${ms.toFixed(0)} ms, RSS ${rssAfter >= rssBefore ? '+' : ''}${((rssAfter - rssBefore) / 1e6).toFixed(0)} MB, ${result.findings.length} findings, ${result.pods.length} pods`);
  }
  for (const row of rows) t.comment(row);
});

t.test('no input polluted a prototype, and the heap came back', async (t) => {
  t.equal(prototypeKeys(), prototypeBefore, 'Object.prototype has the same keys');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  gc();
  const growthMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  t.ok(growthMb < MAX_HEAP_GROWTH_MB, `heap growth ${growthMb.toFixed(1)} MB < ${MAX_HEAP_GROWTH_MB} MB`);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  t.comment(`seed ${SEED}: ${figures.inputs} inputs (${figures.refused} refused, ${figures.accepted} accepted) in ${((performance.now() - startedAt) / 1000).toFixed(1)} s; slowest ${figures.maxMs.toFixed(0)} ms (${figures.slowest}, ${figures.maxMsBytes} bytes); peak RSS ${peakRssMb.toFixed(0)} MB; heap growth ${growthMb.toFixed(1)} MB`);
  t.ok(figures.inputs >= RUNS, `at least ${RUNS} inputs`);
});
