// Bytes a webhook publisher sends per hour for 20 steady pods (issue 12): the full PodList on
// every heartbeat (deltas off, `--publish-full-interval 0`: what every receiver got before
// deltas, and still gets unless it opts in) against deltas (a receiver answering
// `X-Podvisor-Deltas: accept`, a full PodList once an hour, an empty delta on each other beat).
//
// In process, no podman: the built publisher (dist/) reads a real MirrorStore holding 20 mirror
// pods made by the agent's own functions from the benchmark manifest (loadManifestFile: the
// defaulted spec and annotations the agent serves) with a status as the agent computes one for a
// running pod. The receiver is an HTTP server on 127.0.0.1 counting each request's bytes as they
// arrive on the socket (request line, headers and body).
//
// Scaled clock: the heartbeat fires every second (`* * * * * *`) instead of every minute and the
// full interval is 60 s instead of 3600 s, so one bench minute is one real hour: 60 heartbeats,
// of which (with deltas) one is the hourly full PodList. The counted window is the first 60 POSTs:
// start-up's full PodList (standing for the hourly one) and 59 heartbeats.
//   node bench/webhook-bytes.mjs [--pods 20] [--out bench/results/webhook-bytes.json]
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { manifestYaml, ROOT } from './lib.mjs';

const { values } = parseArgs({ options: { pods: { type: 'string', default: '20' }, out: { type: 'string', default: join(ROOT, 'bench', 'results', 'webhook-bytes.json') } } });
const COUNT = Number(values.pods);
const BEATS = 60;
const dist = (path) => import(join(ROOT, 'dist', path));
const [{ loadManifestFile }, { mirrorPod }, { MirrorStore }, { publishInputFrom }, { WebhookPublisher }, { createLogger }] = await Promise.all(
  ['index.js', 'mirror/mirror-pod.js', 'mirror/mirror-store.js', 'publish/publisher.js', 'publish/webhook.js', 'log/logger.js'].map(dist),
);

/** 20 mirror pods as the agent makes them for running, Ready, proven pods. */
async function steadyPods() {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-webhook-bytes-'));
  const pods = [];
  try {
    for (let index = 0; index < COUNT; index++) {
      const file = join(dir, `pvb-hook-${String(index).padStart(2, '0')}.yaml`);
      writeFileSync(file, manifestYaml(`pvb-hook-${String(index).padStart(2, '0')}`));
      const [desired] = (await loadManifestFile(file, { nodeName: 'edge-1' })).pods;
      const at = '2026-12-04T10:00:00Z';
      const condition = (type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: at });
      const status = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { ...desired.pod.metadata, annotations: { ...desired.pod.metadata.annotations, 'podvisor.io/rollout': 'Ready', 'podvisor.io/rollout-wanted-hash': desired.hash }, creationTimestamp: at },
        spec: desired.pod.spec,
        status: {
          phase: 'Running',
          conditions: [condition('PodReadyToStartContainers'), condition('Initialized'), condition('Ready'), condition('ContainersReady'), condition('PodScheduled'), { type: 'podvisor.io/ManifestApplied', status: 'True', reason: 'Ready', message: `spec ${desired.hash} proven Ready`, lastTransitionTime: at, lastProbeTime: null }],
          hostIP: '192.168.1.20',
          hostIPs: [{ ip: '192.168.1.20' }],
          podIP: '10.88.0.12',
          podIPs: [{ ip: '10.88.0.12' }],
          startTime: at,
          qosClass: 'BestEffort',
          initContainerStatuses: [],
          containerStatuses: [{ name: 'main', state: { running: { startedAt: at } }, lastState: {}, ready: true, restartCount: 0, image: 'localhost/busybox:podvisor', imageID: `sha256:${'a'.repeat(64)}`, containerID: `podman://${'b'.repeat(64)}`, started: true }],
        },
      };
      pods.push(mirrorPod(status, { name: 'edge-1', uid: '00000000-0000-4000-8000-000000000001' }));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return pods;
}

/** One variant: the first BEATS POSTs (the full one at start, then heartbeats). */
async function measure(name, pods, { fullIntervalSeconds, optIn }) {
  const requests = [];
  const server = createServer((req, res) => {
    let body = 0;
    // What crossed the wire for this request: its request line, headers (as sent) and body.
    const head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`.length + req.rawHeaders.reduce((sum, part) => sum + part.length + 2, 0) + 2; // "Name: value\r\n" each, then a blank line
    req.on('data', (chunk) => (body += chunk.length));
    req.on('end', () => {
      const kind = req.headers['x-podvisor-base-version'] ? 'delta' : 'full';
      requests.push({ kind, head, body });
      res.writeHead(204, optIn ? { 'X-Podvisor-Deltas': 'accept' } : {}).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const store = new MirrorStore();
  store.replace('pods', pods);
  const logger = createLogger({ level: 'error', format: 'json' });
  const publisher = new WebhookPublisher({ input: publishInputFrom(store, 'edge-1'), logger, url: `http://127.0.0.1:${server.address().port}/hook`, heartbeat: '* * * * * *', fullIntervalSeconds });
  const started = Date.now();
  publisher.start();
  while (requests.length < BEATS) await new Promise((resolve) => setTimeout(resolve, 100));
  await publisher.stop();
  await new Promise((resolve) => server.close(resolve));
  const hour = requests.slice(0, BEATS);
  const sum = (list, pick) => list.reduce((total, one) => total + pick(one), 0);
  const fulls = hour.filter((one) => one.kind === 'full');
  const deltas = hour.filter((one) => one.kind === 'delta');
  return {
    name,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    posts: hour.length,
    full: fulls.length,
    delta: deltas.length,
    bytesPerHour: sum(hour, (one) => one.head + one.body),
    bodyBytesPerHour: sum(hour, (one) => one.body),
    fullPostBytes: fulls[0] ? fulls[0].head + fulls[0].body : undefined,
    deltaPostBytes: deltas[0] ? deltas[0].head + deltas[0].body : undefined,
  };
}

const pods = await steadyPods();
const before = await measure('before: full PodList each heartbeat (--publish-full-interval 0)', pods, { fullIntervalSeconds: 0, optIn: false });
const after = await measure('after: deltas, receiver opted in, full hourly (scaled: 60 s)', pods, { fullIntervalSeconds: BEATS, optIn: true });
const result = { at: new Date().toISOString(), pods: COUNT, heartbeatsPerHour: BEATS, before, after, ratio: Math.round((after.bytesPerHour / before.bytesPerHour) * 1000) / 1000 };
writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
