// Pods waiting in init delay no other pod: the time from dropping a plain one-container pod's
// manifest to the agent's own "pod started" line for it (no poller loads either side), alone and
// beside five pods whose init containers wait forever (already waiting). Target: beside / alone
// ≤ 1.5 (before the pod worker model, the plain pod waited for an init container to end).
// Reps alternate A B A B A B, each with a fresh agent and node name.
import { Agent, cleanupNode, dropFiles, freshDir, IMAGE, join, log, machineFacts, manifestYaml, mkdirSync, nowMs, round, sleep, stats, writeResult } from './lib.mjs';

const REPS = Number(process.env.PVB_REPS ?? 3);
const WAITERS = 5;

const waiting = (name) => manifestYaml(name).replace('  containers:\n', `  initContainers:\n    - name: wait-for-db\n      image: ${IMAGE}\n      command: ["sleep", "3600"]\n  containers:\n`);

/** One rep: ms from the drop to "pod started" for the plain pod. */
async function rep(kind, index) {
  const node = `pvb-stall-${kind}${index}`;
  const root = freshDir('init-stall', node);
  const manifestDir = join(root, 'manifests');
  const stageDir = join(root, 'stage');
  const stateDir = join(root, 'state');
  for (const dir of [manifestDir, stageDir, stateDir]) mkdirSync(dir, { recursive: true });
  await cleanupNode(node);
  if (kind === 'beside') dropFiles(stageDir, manifestDir, Array.from({ length: WAITERS }, (_, i) => ({ name: `wait${i}.yaml`, text: waiting(`wait${i}`) })));
  const agent = new Agent({ node, manifestDir, stateDir, logFile: join(root, 'agent.log') });
  try {
    await agent.ready();
    if (kind === 'beside') {
      // Every waiting pod has its init container started (its worker is idle again).
      for (let i = 0; i < WAITERS; i++) await agent.waitFor((e) => e.event === 'InitContainerStarted' && e.pod === `default/wait${i}-${node}`, 120_000, `wait${i} started`);
      await sleep(2000);
    }
    const t0 = dropFiles(stageDir, manifestDir, [{ name: 'plain.yaml', text: manifestYaml('plain') }]);
    const started = await agent.waitFor((e) => e.message === 'pod started' && e.pod === `default/plain-${node}`, 120_000, 'plain started');
    return started.receivedAt - t0;
  } finally {
    await agent.stop();
    await cleanupNode(node);
  }
}

const facts = await machineFacts();
const alone = [];
const beside = [];
for (let i = 0; i < REPS; i++) {
  alone.push(round(await rep('alone', i)));
  log(`alone rep ${i}: ${alone.at(-1)} ms`);
  beside.push(round(await rep('beside', i)));
  log(`beside rep ${i}: ${beside.at(-1)} ms`);
}
const a = stats(alone);
const b = stats(beside);
const ratio = round(b.median / a.median, 3);
log(`plain pod start: alone median ${a.median} ms, beside ${WAITERS} waiting pods median ${b.median} ms, ratio ${ratio} (target ≤ 1.5)`);
writeResult('init-stall', { facts, finishedAt: new Date(nowMs()).toISOString(), waiters: WAITERS, alone, beside, aloneStats: a, besideStats: b, ratio });
