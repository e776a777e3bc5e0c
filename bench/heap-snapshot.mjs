// Where the idle agent's memory is: N pods (PVB_IDLE_PODS, 20) brought up as bench/idle.mjs does,
// then, SETTLE_S (45) seconds after they all run, the agent's /proc smaps grouped, and a V8 heap
// snapshot taken through --heapsnapshot-signal (the launcher PVB_CLI must pass
// `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR`; PVB_SNAPSHOT_DIR names that DIR). The
// snapshot is then summarised by bench/heap-summary.mjs.
//   PVB_CLI=launcher PVB_SNAPSHOT_DIR=dir node bench/heap-snapshot.mjs
import { readdirSync } from 'node:fs';
import { Agent, cleanupNode, freshDir, join, log, manifestYaml, procSample, readFileSync, sleep, waitRunning, writeFileSync } from './lib.mjs';

const N = Number(process.env.PVB_IDLE_PODS ?? 20);
const SETTLE_S = Number(process.env.PVB_SETTLE_S ?? 45);
const SNAP = process.env.PVB_SNAPSHOT_DIR;
const node = 'pvb-heap';
const [watch, state] = ['watch', 'state'].map((d) => freshDir('heap', d));
for (let i = 1; i <= N; i++) writeFileSync(join(watch, `pvb-heap-${String(i).padStart(2, '0')}.yaml`), manifestYaml(`pvb-heap-${String(i).padStart(2, '0')}`));
await cleanupNode(node);
const agent = new Agent({ node, manifestDir: watch, stateDir: state, logFile: join(freshDir('heap', 'log'), 'agent.log'), logLevel: 'info' });
try {
  await agent.ready();
  await waitRunning(node, N, { intervalMs: 500, timeoutMs: 240_000 });
  await sleep(SETTLE_S * 1000);
  // the agent's pid: the launcher execs the runtime, so the child's pid is the agent's
  const smaps = readFileSync(`/proc/${agent.pid}/smaps`, 'utf8');
  const groups = {};
  let current = null;
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) { current = head[1] || '[anon]'; continue; }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && current) groups[current] = (groups[current] ?? 0) + Number(rss[1]);
  }
  const rssKb = procSample(agent.pid).rssKb;
  log(`agent ${agent.pid} RSS ${(rssKb / 1024).toFixed(1)} MB; smaps: ${Object.entries(groups).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${(v / 1024).toFixed(1)}`).join(', ')}`);
  if (SNAP) {
    const before = new Set(readdirSync(SNAP));
    process.kill(agent.pid, 'SIGUSR2');
    for (let i = 0; i < 120; i++) {
      await sleep(1000);
      const fresh = readdirSync(SNAP).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
      if (fresh.length) { await sleep(3000); log(`snapshot ${join(SNAP, fresh[0])}`); break; }
    }
  }
  writeFileSync(join(SNAP ?? '.', 'smaps-groups.json'), JSON.stringify({ rssKb, groups }, null, 2));
} finally {
  await agent.stop();
  await cleanupNode(node);
}
