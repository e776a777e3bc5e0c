// Who may have written a manifest: the file, its directory and, for a symbolic link, where it
// leads and every directory above that, against real files in a temporary directory (the tests run
// as root, which may chown to any user). Each refusal says why and how to fix it, and the loader
// turns it into the file's one error: the file is not read.
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { isUnder, ownershipProblem, trustedUidsFor, untrustedReason, type OwnershipOptions } from '../../src/manifest/file-ownership.js';
import { loadManifestFile } from '../../src/manifest/load-file.js';
import { formatFinding } from '../../src/manifest/validate.js';

const MANIFEST = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: app\n      image: nginx:1.25\n';
const ROOT_ONLY = { trustedUids: trustedUidsFor(0) };

/** A root-owned 0755 directory with a root-owned 0644 manifest in it (modes set, not left to the umask). */
async function world(t: Test): Promise<{ dir: string; file: string; options: OwnershipOptions }> {
  const top = await mkdtemp(join(tmpdir(), 'podvisor-ownership-'));
  t.teardown(() => rm(top, { recursive: true, force: true }));
  const dir = join(top, 'pods.d');
  await mkdir(dir);
  await chmod(dir, 0o755);
  const file = join(dir, 'web.yaml');
  await writeFile(file, MANIFEST);
  await chmod(file, 0o644);
  return { dir, file, options: { trustedUids: trustedUidsFor(0), symlinkRoots: [dir] } };
}

/** A manifest in a directory beside `dir`, owned and moded well, and `dir/out.yaml` linking to it. */
async function linkOutside(dir: string): Promise<{ elsewhere: string; outside: string; out: string }> {
  const elsewhere = join(dir, '..', 'elsewhere');
  await mkdir(elsewhere);
  await chmod(elsewhere, 0o755);
  const outside = join(elsewhere, 'web.yaml');
  await writeFile(outside, MANIFEST);
  await chmod(outside, 0o644);
  const out = join(dir, 'out.yaml');
  await symlink(outside, out);
  return { elsewhere, outside, out };
}

t.test('untrustedReason: owner and mode, with the fix', async (t) => {
  const path = '/etc/pods.d/web.yaml';
  t.equal(untrustedReason(path, 'file', { uid: 0, mode: 0o100644 }, ROOT_ONLY), undefined, 'root, 0644');
  t.equal(untrustedReason(path, 'file', { uid: 0, mode: 0o100600 }, ROOT_ONLY), undefined, 'root, 0600');
  t.equal(untrustedReason(path, 'file', { uid: 0, mode: 0o100664 }, ROOT_ONLY), '/etc/pods.d/web.yaml is writable by group (mode 0664): chmod go-w /etc/pods.d/web.yaml');
  t.equal(untrustedReason(path, 'file', { uid: 0, mode: 0o100646 }, ROOT_ONLY), '/etc/pods.d/web.yaml is writable by others (mode 0646): chmod go-w /etc/pods.d/web.yaml');
  t.equal(untrustedReason(path, 'file', { uid: 0, mode: 0o100666 }, ROOT_ONLY), '/etc/pods.d/web.yaml is writable by group and others (mode 0666): chmod go-w /etc/pods.d/web.yaml');
  t.equal(untrustedReason(path, 'file', { uid: 1000, mode: 0o100644 }, ROOT_ONLY), '/etc/pods.d/web.yaml is owned by uid 1000, not root: chown root /etc/pods.d/web.yaml');
  t.equal(untrustedReason('/etc/pods.d', 'directory', { uid: 0, mode: 0o40775 }, ROOT_ONLY), 'the directory /etc/pods.d is writable by group (mode 0775): chmod go-w /etc/pods.d');
  // An agent (or validate) running as uid 1000 trusts its own files too.
  const asUser = { trustedUids: trustedUidsFor(1000) };
  t.equal(untrustedReason(path, 'file', { uid: 1000, mode: 0o100644 }, asUser), undefined, "the process's own user");
  t.equal(untrustedReason(path, 'file', { uid: 1001, mode: 0o100644 }, asUser), '/etc/pods.d/web.yaml is owned by uid 1001, not root or uid 1000: chown root /etc/pods.d/web.yaml');
  t.same([...trustedUidsFor(undefined)], [0], 'no euid (not POSIX): root only');
  // A sticky directory (/tmp) writable by all: fine above an entry of a trusted owner, which no one else may rename.
  const sticky = { uid: 0, mode: 0o41777 };
  t.equal(untrustedReason('/tmp', 'directory', sticky, ROOT_ONLY, { uid: 0, mode: 0o40700 }), undefined, 'sticky, trusted child');
  t.equal(untrustedReason('/tmp', 'directory', sticky, ROOT_ONLY, { uid: 1000, mode: 0o40700 }), 'the directory /tmp is writable by group and others (mode 1777): chmod go-w /tmp', 'sticky, untrusted child');
  t.equal(untrustedReason('/tmp', 'directory', sticky, ROOT_ONLY), 'the directory /tmp is writable by group and others (mode 1777): chmod go-w /tmp', 'the manifest directory itself may not be sticky and open');
  t.equal(untrustedReason('/a\nb', 'file', { uid: 0, mode: 0o100664 }, ROOT_ONLY), '/a\\nb is writable by group (mode 0664): chmod go-w /a\\nb', 'a control character in a name is escaped');
});

t.test('isUnder compares whole path elements', async (t) => {
  t.ok(isUnder('/etc/pods.d/web.yaml', '/etc/pods.d'));
  t.ok(isUnder('/etc/pods.d', '/etc/pods.d'));
  t.notOk(isUnder('/etc/pods.dx/web.yaml', '/etc/pods.d'));
  t.ok(isUnder('/anything', '/'));
});

t.test('a file and its directory on disk', async (t) => {
  const { dir, file, options } = await world(t);
  t.equal(await ownershipProblem(file, options), undefined, 'root, 0644 in a root 0755 directory: read');
  await chmod(file, 0o664);
  t.equal(await ownershipProblem(file, options), `${file} is writable by group (mode 0664): chmod go-w ${file}`);
  await chmod(file, 0o644);
  await chown(file, 1000, 1000);
  t.equal(await ownershipProblem(file, options), `${file} is owned by uid 1000, not root: chown root ${file}`);
  t.equal(await ownershipProblem(file, { ...options, trustedUids: trustedUidsFor(1000) }), undefined, 'trusted when the process runs as its owner');
  await chown(file, 0, 0);
  await chmod(dir, 0o757);
  t.equal(await ownershipProblem(file, options), `the directory ${dir} is writable by others (mode 0757): chmod go-w ${dir}`, 'the whole directory refused');
  await chmod(dir, 0o755);
  await chown(dir, 1000, 1000);
  t.equal(await ownershipProblem(file, options), `the directory ${dir} is owned by uid 1000, not root: chown root ${dir}`);
  await chown(dir, 0, 0);
  t.equal(await ownershipProblem(join(dir, 'gone.yaml'), options), undefined, 'a missing file is not refused here: reading it says it is gone');
});

t.test('symbolic links: only to files under the allowed roots, owned and kept as the files are', async (t) => {
  const { dir, file, options } = await world(t);
  const versions = join(dir, 'versions');
  await mkdir(versions);
  await chmod(versions, 0o755);
  const target = join(versions, 'web-2.yaml');
  await writeFile(target, MANIFEST);
  await chmod(target, 0o644);
  const link = join(dir, 'current.yaml');
  await symlink('versions/web-2.yaml', link);
  t.equal(await ownershipProblem(link, options), undefined, 'a link within the manifest directory (the default root): followed');

  await chmod(target, 0o664);
  t.equal(await ownershipProblem(link, options), `${link} links to ${target} is writable by group (mode 0664): chmod go-w ${target}`, "the target's own mode");
  await chmod(target, 0o644);
  await chmod(versions, 0o775);
  t.equal(await ownershipProblem(link, options), `${link} links to ${target}, and the directory ${versions} is writable by group (mode 0775): chmod go-w ${versions}`, 'a directory above the target');
  await chmod(versions, 0o755);

  const { elsewhere, outside, out } = await linkOutside(dir);
  t.equal(await ownershipProblem(out, options), `${out} is a symbolic link to ${outside}: links are followed only into ${dir} (policy.symlink-roots); copy the file here, or add its directory to policy.symlink-roots`);
  t.equal(await ownershipProblem(out, { ...options, symlinkRoots: [dir, elsewhere] }), undefined, 'followed once its directory is a root');
  t.equal(await ownershipProblem(link, { ...options, symlinkRoots: [] }), `${link} is a symbolic link to ${target}: no symbolic link is followed (policy.symlink-roots is empty); copy the file here, or add its directory to policy.symlink-roots`);
  // A chain of links is judged by where it ends.
  const chain = join(dir, 'chain.yaml');
  await symlink('out.yaml', chain);
  t.match(await ownershipProblem(chain, options), /is a symbolic link to .*elsewhere\/web\.yaml: links are followed only into/);
  t.equal(await ownershipProblem(file, { ...options, symlinkRoots: [] }), undefined, 'a regular file needs no root');
});

t.test('each rule on its own: owners unchecked keep links in their roots; links unchecked keep owners checked', async (t) => {
  const { dir, file, options } = await world(t);
  const { elsewhere, outside, out } = await linkOutside(dir);
  const inside = join(dir, 'inside.yaml');
  await symlink('web.yaml', inside);

  const linksOnly: OwnershipOptions = { ...options, trustedUids: undefined };
  t.equal(await ownershipProblem(out, linksOnly), `${out} is a symbolic link to ${outside}: links are followed only into ${dir} (policy.symlink-roots); copy the file here, or add its directory to policy.symlink-roots`, 'owners unchecked: a link out of the roots is still refused');
  await chmod(file, 0o664);
  await chmod(dir, 0o775);
  t.equal(await ownershipProblem(file, linksOnly), undefined, 'owners unchecked: a group-writable file in a group-writable directory is read');
  t.equal(await ownershipProblem(inside, linksOnly), undefined, 'and a link to it within the roots is followed');
  const loaded = await loadManifestFile(out, { nodeName: 'node1', ownership: linksOnly });
  t.same(loaded.findings.map(formatFinding), [`${out}:1:1: refused: ${out} is a symbolic link to ${outside}: links are followed only into ${dir} (policy.symlink-roots); copy the file here, or add its directory to policy.symlink-roots`], 'the loader refuses it: not read');
  await chmod(dir, 0o755);

  const ownersOnly: OwnershipOptions = { ...options, symlinkRoots: undefined };
  t.equal(await ownershipProblem(out, ownersOnly), undefined, 'links unchecked: followed anywhere');
  await chmod(outside, 0o664);
  t.equal(await ownershipProblem(out, ownersOnly), `${out} links to ${outside} is writable by group (mode 0664): chmod go-w ${outside}`, "but the target's owner and mode still count");
  t.equal(await ownershipProblem(file, ownersOnly), `${file} is writable by group (mode 0664): chmod go-w ${file}`, 'and a plain file is checked as before');
});

t.test('the loader: a refused file is one error and is not read; unchecked without the option', async (t) => {
  const { file, options } = await world(t);
  await chmod(file, 0o664);
  const refused = await loadManifestFile(file, { nodeName: 'node1', ownership: options });
  t.equal(refused.hasErrors, true);
  t.same(refused.pods, []);
  t.same(refused.findings.map(formatFinding), [`${file}:1:1: refused: ${file} is writable by group (mode 0664): chmod go-w ${file}`]);
  t.equal(refused.ownershipProblem, `${file} is writable by group (mode 0664): chmod go-w ${file}`);
  t.ok(refused.size > 0 && refused.mtimeMs > 0, 'its size and time are kept, to tell a later change');
  t.equal(refused.readError, undefined, 'not an unreadable file (which would be retried as passing)');

  const unchecked = await loadManifestFile(file, { nodeName: 'node1' });
  t.same(unchecked.pods.map((pod) => pod.key), ['default/web-node1'], 'without the option, as before: read');
  await chmod(file, 0o644);
  const allowed = await loadManifestFile(file, { nodeName: 'node1', ownership: options });
  t.same(allowed.pods.map((pod) => pod.key), ['default/web-node1']);
  t.equal(allowed.ownershipProblem, undefined);
});
