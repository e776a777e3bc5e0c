// The directory source under a manifest policy, on a real directory: a chmod or chown changes no
// content, yet the next scan judges the file again (refused, then read once fixed); a directory
// that turns group-writable refuses every file in it; and a new policy (a reload) judges every file
// again at once, changed or not.
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { OPEN_POLICY } from '../../src/manifest/device-policy.js';
import { DirectorySource, type SourceSnapshot } from '../../src/manifest/directory-source.js';
import { trustedUidsFor } from '../../src/manifest/file-ownership.js';
import { formatFinding } from '../../src/manifest/validate.js';

const manifest = (name: string, extraSpec = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n${extraSpec}  containers:\n    - name: app\n      image: nginx:1.25\n`;

/** Writes a root-owned manifest of `mode`, its times in the past: a scan takes it as settled, not being written. */
async function put(path: string, text: string, mode = 0o644): Promise<void> {
  await writeFile(path, text);
  await chmod(path, mode);
  const past = new Date(Date.now() - 10_000);
  await utimes(path, past, past);
}

/** A root 0755 directory with root 0644 files, and a source on it that is only rescanned by hand. */
async function world(t: Test) {
  const top = await mkdtemp(join(tmpdir(), 'podvisor-dir-policy-'));
  t.teardown(() => rm(top, { recursive: true, force: true }));
  const dir = join(top, 'pods.d');
  await mkdir(dir);
  await chmod(dir, 0o755);
  const snapshots: SourceSnapshot[] = [];
  const ownership = { trustedUids: trustedUidsFor(0), symlinkRoots: [dir] };
  const source = new DirectorySource({ dir, nodeName: 'node1', resyncIntervalMs: 0, ownership, onSnapshot: (snapshot) => snapshots.push(snapshot), onError: () => undefined });
  t.teardown(() => source.close());
  /** The file's errors in the last snapshot, as printed. */
  const errorsOf = (name: string) => snapshots.at(-1)?.files.find((file) => file.path === join(dir, name))?.findings.filter((finding) => finding.severity === 'error').map(formatFinding);
  const podsOf = (name: string) => snapshots.at(-1)?.files.find((file) => file.path === join(dir, name))?.pods.map((pod) => pod.key);
  return { dir, source, snapshots, ownership, errorsOf, podsOf };
}

t.test('a chmod alone is seen at the next scan: refused, then read once fixed', async (t) => {
  const { dir, source, snapshots, errorsOf, podsOf } = await world(t);
  const web = join(dir, 'web.yaml');
  await put(web, manifest('web'), 0o664);
  await put(join(dir, 'other.yaml'), manifest('other'));
  await source.rescan();
  t.same(errorsOf('web.yaml'), [`${web}:1:1: refused: ${web} is writable by group (mode 0664): chmod go-w ${web}`]);
  t.same(podsOf('web.yaml'), []);
  t.same(podsOf('other.yaml'), ['default/other-node1'], 'the file beside it is read');

  const before = snapshots.length;
  await chmod(web, 0o644);
  await source.rescan();
  t.equal(snapshots.length, before + 1, 'one snapshot for the fix');
  t.same(snapshots.at(-1)?.changed.map((file) => file.path), [web], 'only the fixed file is read again');
  t.same(errorsOf('web.yaml'), []);
  t.same(podsOf('web.yaml'), ['default/web-node1']);

  await source.rescan();
  t.equal(snapshots.length, before + 1, 'nothing changed since: no snapshot');

  await chmod(web, 0o646);
  await source.rescan();
  t.same(errorsOf('web.yaml'), [`${web}:1:1: refused: ${web} is writable by others (mode 0646): chmod go-w ${web}`], 'made writable again: refused again');
});

t.test('a group-writable directory refuses every file in it, until fixed', async (t) => {
  const { dir, source, errorsOf, podsOf } = await world(t);
  for (const name of ['a', 'b']) await put(join(dir, `${name}.yaml`), manifest(name));
  await source.rescan();
  t.same(podsOf('a.yaml'), ['default/a-node1']);
  await chmod(dir, 0o775);
  await source.rescan();
  for (const name of ['a', 'b']) {
    t.same(errorsOf(`${name}.yaml`), [`${join(dir, `${name}.yaml`)}:1:1: refused: the directory ${dir} is writable by group (mode 0775): chmod go-w ${dir}`], `${name}.yaml refused with its directory`);
  }
  await chmod(dir, 0o755);
  await source.rescan();
  t.same([podsOf('a.yaml'), podsOf('b.yaml')], [['default/a-node1'], ['default/b-node1']]);
});

t.test('a new policy (a reload) judges every file again, though none changed', async (t) => {
  const { dir, source, snapshots, ownership, errorsOf, podsOf } = await world(t);
  const host = join(dir, 'host.yaml');
  await put(host, manifest('host', '  hostNetwork: true\n'), 0o664);
  await put(join(dir, 'plain.yaml'), manifest('plain'));
  await source.rescan();
  t.match(errorsOf('host.yaml'), [/refused: .* is writable by group/]);

  await source.setPolicy({ ownership: undefined, devicePolicy: OPEN_POLICY });
  t.same(podsOf('host.yaml'), ['default/host-node1'], 'ownership no longer checked: read at once');
  t.same(snapshots.at(-1)?.changed.map((file) => file.path).sort(), [host, join(dir, 'plain.yaml')], 'every file judged again');

  // Owners unchecked, links still held to the roots: a link out of the directory stays refused.
  const outside = join(dir, '..', 'outside.yaml');
  await put(outside, manifest('outside'));
  await symlink(outside, join(dir, 'out.yaml'));
  await source.setPolicy({ ownership: { ...ownership, trustedUids: undefined }, devicePolicy: OPEN_POLICY });
  t.same(podsOf('host.yaml'), ['default/host-node1'], 'owners unchecked: the group-writable file is read');
  t.match(errorsOf('out.yaml'), [/refused: .*out\.yaml is a symbolic link to .*outside\.yaml: links are followed only into/], 'but the link out of the roots is refused');
  await rm(join(dir, 'out.yaml'));

  await source.setPolicy({ ownership, devicePolicy: { ...OPEN_POLICY, hostNetwork: false } });
  t.match(errorsOf('host.yaml'), [/refused: .* is writable by group/], 'ownership back: refused before any content is read');
  await chmod(host, 0o644);
  await source.rescan();
  t.same(errorsOf('host.yaml'), [`${host}:6:3: spec.hostNetwork: refused by policy: pods may not share the host's network namespace on this device (policy.host-network: false)`]);
  t.same(podsOf('plain.yaml'), ['default/plain-node1'], 'a file the policy allows is untouched');
});
