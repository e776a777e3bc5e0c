// kubeadm's etcd static pod, made runnable on this machine for test/e2e/etcd.test.ts and the
// control-plane example: the manifest kubeadm wrote (test/fixtures/corpus/real-pods, byte for
// byte from its source) with only what cannot hold here changed, the certificates kubeadm would
// make under /etc/kubernetes/pki/etcd made with openssl, and the local etcd image that Debian's
// packages give (scripts/build-etcd-image.sh). Everything else in the manifest is kubeadm's own,
// which is the point: podvisor must run what kubeadm writes.
import { chmod, copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Test } from 'tap';
import { parseDocument } from 'yaml';
import { REPO } from './harness.js';

/** kubeadm's etcd manifest as the corpus holds it. */
export const KUBEADM_ETCD = join(REPO, 'test', 'fixtures', 'corpus', 'real-pods', 'kubeadm__etcd.yaml');

/** The etcd image scripts/build-etcd-image.sh makes (PODVISOR_ETCD_IMAGE names another). */
export const ETCD_IMAGE = process.env.PODVISOR_ETCD_IMAGE ?? 'localhost/etcd:3.4-podvisor';

/**
 * Flags of kubeadm's etcd 3.5 that etcd 3.4 (Debian 12's) does not know and refuses to start
 * with: the distributed-tracing flags the manifest's author added.
 */
export const ETCD_35_ONLY_FLAGS: readonly string[] = [
  '--experimental-enable-distributed-tracing',
  '--experimental-distributed-tracing-address',
  '--experimental-distributed-tracing-service-name',
  '--experimental-distributed-tracing-instance-id',
];

/** The host address kubeadm's manifest advertises and listens on (the author's machine). */
const KUBEADM_ADDRESS = '192.168.1.106';
const KUBEADM_PORTS = { client: 2379, peer: 2380, metrics: 2381 } as const;
const KUBEADM_PKI = '/etc/kubernetes/pki/etcd';
const KUBEADM_DATA = '/var/lib/etcd';

/** Where one etcd member listens (127.0.0.1 only) and keeps its files on the host. */
export interface EtcdPlace {
  clientPort: number;
  peerPort: number;
  metricsPort: number;
  /** Host directory for the manifest's /etc/kubernetes/pki/etcd hostPath. */
  pkiDir: string;
  /** Host directory for the manifest's /var/lib/etcd hostPath. */
  dataDir: string;
  /** One member of a cluster on this host; without it, kubeadm's single member (`fedora`). */
  member?: EtcdMembership;
}

/**
 * A member of a cluster of etcds on one host, each its own static pod: the member's name (the pod
 * is `etcd-<name>`) and the whole initial cluster, this member included, by name and peer port.
 */
export interface EtcdMembership {
  name: string;
  cluster: readonly { name: string; peerPort: number }[];
}

/**
 * The places of an initial cluster of `names` on this host: each member its ports (from
 * `port()`, e.g. the harness's freePort) and its own pki and data directories under `root`.
 */
export async function etcdClusterPlaces(names: readonly string[], root: string, port: () => Promise<number>): Promise<EtcdPlace[]> {
  const ports = [];
  for (const name of names) ports.push({ name, clientPort: await port(), peerPort: await port(), metricsPort: await port() });
  const cluster = ports.map(({ name, peerPort }) => ({ name, peerPort }));
  return ports.map(({ name, ...own }) => ({ ...own, pkiDir: join(root, name, 'pki', 'etcd'), dataDir: join(root, name, 'etcd-data'), member: { name, cluster } }));
}

/** Builds the image when it is missing (cached); throws with the script's own words when it cannot. */
export async function ensureEtcdImage(): Promise<string> {
  const result = await execa('bash', [join(REPO, 'scripts', 'build-etcd-image.sh')], { reject: false, stdin: 'ignore', timeout: 300_000 });
  if (result.exitCode !== 0) {
    throw new Error(`the etcd image ${ETCD_IMAGE} could not be built (scripts/build-etcd-image.sh, exit ${String(result.exitCode)}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return ETCD_IMAGE;
}

/** ensureEtcdImage for a test: false (the test failed, saying why) when the image cannot be had. */
export async function etcdImageFor(t: Test): Promise<boolean> {
  try {
    await ensureEtcdImage();
    return true;
  } catch (error) {
    t.fail(`no etcd image, so nothing here can run: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

/** Rewrites one address of kubeadm's (host:port in a URL or a flag value) to 127.0.0.1 and this member's port. */
function moveAddress(value: string, place: EtcdPlace): string {
  const ports: Record<number, number> = { [KUBEADM_PORTS.client]: place.clientPort, [KUBEADM_PORTS.peer]: place.peerPort, [KUBEADM_PORTS.metrics]: place.metricsPort };
  return value.replace(/(192\.168\.1\.106|127\.0\.0\.1):(\d+)/g, (whole, _host: string, port: string) => {
    const moved = ports[Number(port)];
    return moved === undefined ? whole : `127.0.0.1:${moved}`;
  });
}

/** One etcd flag moved here: addresses to 127.0.0.1 and this member's ports, a URL listed twice once. */
function moveFlag(flag: string, place: EtcdPlace): string {
  const eq = flag.indexOf('=');
  if (eq === -1) return flag;
  const moved = moveAddress(flag.slice(eq + 1), place);
  // --listen-client-urls listens on 127.0.0.1 and the host's address: both are 127.0.0.1 here,
  // and etcd cannot listen twice on one address.
  const unique = [...new Set(moved.split(','))].join(',');
  return `${flag.slice(0, eq + 1)}${unique}`;
}

/**
 * A cluster member's flags in place of kubeadm's single member's: its own name, the whole initial
 * cluster, and `--initial-cluster-state=new` (kubeadm's own flag for the first members; a member
 * joining a running cluster would say `existing`), kept in kubeadm's sorted order.
 */
function asMember(command: readonly string[], member: EtcdMembership): string[] {
  const cluster = member.cluster.map(({ name, peerPort }) => `${name}=https://127.0.0.1:${peerPort}`).join(',');
  return command.flatMap((flag) => {
    if (flag.startsWith('--name=')) return [`--name=${member.name}`];
    if (flag.startsWith('--initial-cluster=')) return [`--initial-cluster=${cluster}`, '--initial-cluster-state=new'];
    return [flag];
  });
}

/**
 * kubeadm's manifest with only these changed: the image (the local one), the addresses and ports
 * (127.0.0.1, this member's ports, in the flags, the probes and kubeadm's annotation), the flags
 * etcd 3.4 lacks (left out) and the two hostPaths (this member's directories); for a member of a
 * cluster, also the pod's name (`etcd-<member>`: three pods on one node need three names), the
 * member's name and the initial cluster. `extraFlags` are appended (an edit of the manifest, in a
 * test).
 */
export function runnableEtcdManifest(kubeadmText: string, place: EtcdPlace, image = ETCD_IMAGE, extraFlags: readonly string[] = []): string {
  const doc = parseDocument(kubeadmText);
  const container = ['spec', 'containers', 0];
  doc.setIn([...container, 'image'], image);
  const command = (doc.getIn([...container, 'command']) as { toJSON(): unknown }).toJSON() as string[];
  const moved = command
    .filter((flag) => !ETCD_35_ONLY_FLAGS.includes(flag.split('=')[0] ?? ''))
    .map((flag) => moveFlag(flag, place));
  const runnable = place.member ? asMember(moved, place.member) : moved;
  if (place.member) doc.setIn(['metadata', 'name'], `etcd-${place.member.name}`);
  doc.setIn([...container, 'command'], doc.createNode([...runnable, ...extraFlags]));
  for (const probe of ['livenessProbe', 'startupProbe']) {
    doc.setIn([...container, probe, 'httpGet', 'port'], place.metricsPort);
  }
  const annotation = ['metadata', 'annotations', 'kubeadm.kubernetes.io/etcd.advertise-client-urls'];
  doc.setIn(annotation, moveAddress(String(doc.getIn(annotation)), place));
  const volumes = (doc.getIn(['spec', 'volumes']) as { toJSON(): unknown }).toJSON() as { hostPath?: { path?: string } }[];
  volumes.forEach((volume, index) => {
    const path = volume.hostPath?.path;
    if (path === KUBEADM_PKI) doc.setIn(['spec', 'volumes', index, 'hostPath', 'path'], place.pkiDir);
    else if (path === KUBEADM_DATA) doc.setIn(['spec', 'volumes', index, 'hostPath', 'path'], place.dataDir);
  });
  // kubeadm writes sequences unindented: keep its layout, so a diff shows only what changed.
  return doc.toString({ indentSeq: false });
}

/** kubeadm's own ports and paths: examples/control-plane/etcd.yaml, for a device, is derived with these. */
export const DEVICE_PLACE: EtcdPlace = { clientPort: KUBEADM_PORTS.client, peerPort: KUBEADM_PORTS.peer, metricsPort: KUBEADM_PORTS.metrics, pkiDir: KUBEADM_PKI, dataDir: KUBEADM_DATA };

/** Reads kubeadm's manifest and derives the runnable one (see runnableEtcdManifest). */
export async function kubeadmEtcdManifest(place: EtcdPlace, image = ETCD_IMAGE, extraFlags: readonly string[] = []): Promise<string> {
  return runnableEtcdManifest(await readFile(KUBEADM_ETCD, 'utf8'), place, image, extraFlags);
}

/**
 * The files kubeadm's certs phase makes under /etc/kubernetes/pki/etcd, made under `pkiDir` by
 * the control-plane example's own script (examples/control-plane/make-etcd-pki.sh), so the test
 * proves what a user runs: the etcd CA, server and peer (CN the member's name), healthcheck-client.
 * With `caFrom` (another member's pki directory) the CA is that one, copied in first, as kubeadm
 * join copies it: the members of a cluster must trust one CA.
 */
export async function makeEtcdPki(pkiDir: string, memberName = 'fedora', caFrom?: string): Promise<void> {
  if (caFrom !== undefined) {
    await mkdir(pkiDir, { recursive: true });
    await copyFile(join(caFrom, 'ca.crt'), join(pkiDir, 'ca.crt'));
    await copyFile(join(caFrom, 'ca.key'), join(pkiDir, 'ca.key'));
    await chmod(join(pkiDir, 'ca.key'), 0o600);
  }
  const result = await execa('bash', [join(REPO, 'examples', 'control-plane', 'make-etcd-pki.sh'), pkiDir, memberName], { reject: false, stdin: 'ignore', timeout: 60_000 });
  if (result.exitCode !== 0) throw new Error(`make-etcd-pki.sh: exit ${String(result.exitCode)}: ${result.stderr}`);
}

/** Makes a member's data directory as kubeadm does: etcd wants it 0700. */
export async function makeEtcdDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
}

/** etcdctl's TLS flags with the healthcheck client's certificate, as paths inside the container, for one or more members. */
export function etcdctlArgs(...clientPorts: [number, ...number[]]): string[] {
  return [
    `--endpoints=${clientPorts.map((port) => `https://127.0.0.1:${port}`).join(',')}`,
    `--cacert=${KUBEADM_PKI}/ca.crt`,
    `--cert=${KUBEADM_PKI}/healthcheck-client.crt`,
    `--key=${KUBEADM_PKI}/healthcheck-client.key`,
    '--command-timeout=10s',
  ];
}
