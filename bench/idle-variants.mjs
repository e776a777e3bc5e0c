// Idle RSS of several agent launchers side by side: each variant's agent runs at the same time
// with its own node name and N pods (PVB_IDLE_PODS, 20), so the machine's noise is the same for
// all; the window (PVB_IDLE_WINDOW_S, 60 s) starts 3 s after every agent's pods run, and each
// agent's VmRSS is read once a second in it; at its end the RSS is split (smaps) into the node
// binary's pages, anonymous memory and the rest. Groups run one after another, ROUNDS times, each
// round with the group's order reversed (which agent starts first).
// Unlike bench/idle.mjs every agent sees the other agents' pods in its listings (podman's
// listing is filtered by the managed label, not the node), so the absolute figures carry k×N
// pods' listing work; compare the variants within one group.
//   node bench/idle-variants.mjs --variant NAME=LAUNCHER ... [--rounds 1] [--out FILE]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Agent, cleanupNode, freshDir, join, log, machineFacts, manifestYaml, procSample, readFileSync, round, sleep, stats, waitRunning, writeFileSync } from './lib.mjs';

const { values } = parseArgs({ options: { variant: { type: 'string', multiple: true }, rounds: { type: 'string', default: '1' }, out: { type: 'string' } } });
const N = Number(process.env.PVB_IDLE_PODS ?? 20);
const WINDOW_S = Number(process.env.PVB_IDLE_WINDOW_S ?? 60);
const variants = values.variant.map((v) => { const [name, cli] = v.split(/=(.*)/s); return { name, cli }; });

function smapsSplit(pid) {
  let current = '', bin = 0, anon = 0, other = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) { current = head[1]; continue; }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const kb = Number(m[1]);
    if (/\/node$/.test(current)) bin += kb; else if (current === '' || current === '[heap]') anon += kb; else other += kb;
  }
  return { binMb: round(bin / 1024), anonMb: round(anon / 1024), otherMb: round(other / 1024) };
}

const facts = await machineFacts();
const results = [];
for (let r = 1; r <= Number(values.rounds); r++) {
  const order = r % 2 ? variants : [...variants].reverse();
  const agents = [];
  try {
    for (const [k, v] of order.entries()) {
      const node = `pvb-iv${k}`;
      const [watch, state] = ['watch', 'state'].map((d) => freshDir('idle-variants', node, d));
      for (let i = 1; i <= N; i++) writeFileSync(join(watch, `${node}-${String(i).padStart(2, '0')}.yaml`), manifestYaml(`${node}-${String(i).padStart(2, '0')}`));
      await cleanupNode(node);
      // the launcher as PVB_CLI: lib.mjs's Agent spawns CLI, so start each through a child env
      const agent = new (await agentClass(v.cli))({ node, manifestDir: watch, stateDir: state, logFile: join(freshDir('idle-variants', node, 'log'), 'agent.log'), logLevel: 'info' });
      agents.push({ v, node, agent });
      await agent.ready();
      await waitRunning(node, N, { intervalMs: 500, timeoutMs: 240_000 });
      log(`round ${r}: ${v.name} (${node}) runs ${N} pods`);
    }
    await sleep(3000);
    const load = (await import('node:os')).loadavg();
    const samples = new Map(agents.map((a) => [a.v.name, []]));
    const cpu0 = new Map(agents.map((a) => [a.v.name, procSample(a.agent.pid)]));
    const t0 = performance.now();
    for (let s = 1; s <= WINDOW_S; s++) {
      const wait = t0 + s * 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      for (const a of agents) samples.get(a.v.name).push(procSample(a.agent.pid).rssKb / 1024);
    }
    for (const a of agents) {
      const c0 = cpu0.get(a.v.name), c1 = procSample(a.agent.pid);
      const cpuPct = round(((c1.utime + c1.stime - c0.utime - c0.stime) / 100) / ((c1.at - c0.at) / 1000) * 100, 2);
      const row = { round: r, variant: a.v.name, cli: a.v.cli, load1: round(load[0], 2), rss: stats(samples.get(a.v.name)), cpuPct, ...smapsSplit(a.agent.pid), rssSeries: samples.get(a.v.name).map((x) => round(x)) };
      results.push(row);
      log(`round ${r}: ${a.v.name}: RSS median ${row.rss.median} max ${row.rss.max} MB (node binary ${row.binMb}, anon ${row.anonMb}, other ${row.otherMb}), CPU ${cpuPct} %`);
    }
    // written after every round, so a run cut short keeps what it measured
    if (values.out) writeFileSync(values.out, `${JSON.stringify({ facts, pods: N, windowS: WINDOW_S, variants, results }, null, 2)}\n`);
  } finally {
    for (const a of agents) await a.agent.stop();
    for (const a of agents) await cleanupNode(a.node);
  }
}
if (values.out) writeFileSync(values.out, `${JSON.stringify({ facts, pods: N, windowS: WINDOW_S, variants, results }, null, 2)}\n`);

/** lib.mjs's Agent for another CLI: lib.mjs reads PVB_CLI once, when loaded, so load a fresh instance of it per launcher. */
async function agentClass(cli) {
  process.env.PVB_CLI = cli;
  const lib = await import(`./lib.mjs?cli=${encodeURIComponent(cli)}`);
  return lib.Agent;
}
