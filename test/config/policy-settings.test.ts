// The `policy:` settings: booleans and lists, from the config file (a list is a YAML sequence) and
// from flags (a list is comma-separated), through resolveAgentConfig as `podvisor run` reads them.
// Every bad value names its flag, or the file, line, column and key, and for an item of a list
// the item's own line and index.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { manifestPolicyOf } from '../../src/config/manifest-policy.js';
import { resolveAgentConfig } from '../../src/config/resolve-config.js';
import { UsageError } from '../../src/errors.js';

async function configFile(t: Test, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-policy-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

/** The UsageError's message for these flags and file, or "" when they are accepted. */
async function problem(flags: Record<string, string>, file?: string): Promise<string> {
  try {
    await resolveAgentConfig({ 'node-name': 'node1', ...flags }, file);
    return '';
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return error.message;
  }
}

t.test('the defaults: ownership checked, links only within the manifest directory, everything else allowed', async (t) => {
  const config = await resolveAgentConfig({ 'node-name': 'node1' });
  t.match(config, { policyCheckOwnership: true, policyPrivileged: true, policyHostNetwork: true, policyHostPid: true, policyHostIpc: true, policyRequireDigest: false });
  for (const field of ['policySymlinkRoots', 'policyHostPathPrefixes', 'policyCapabilities', 'policyRegistries'] as const) t.equal(config[field], undefined, `${field} unset`);
  const policy = manifestPolicyOf(config, 0);
  t.same(policy.ownership?.symlinkRoots, ['/etc/pods.d']);
  t.same([...(policy.ownership?.trustedUids ?? [])], [0]);
  t.same([...(manifestPolicyOf(config, 1000).ownership?.trustedUids ?? [])], [0, 1000], "a process not run as root trusts its own user too");
  t.same(policy.devicePolicy, { privileged: true, hostNetwork: true, hostPID: true, hostIPC: true, hostPathPrefixes: undefined, capabilities: undefined, registries: undefined, requireDigest: false });
  t.equal(config.policyCheckSymlinks, true, 'links checked by default');
});

t.test('check-ownership and check-symlinks are independent: turning one off keeps the other', async (t) => {
  const noOwners = manifestPolicyOf(await resolveAgentConfig({ 'node-name': 'node1', 'policy-check-ownership': 'false' }), 0);
  t.equal(noOwners.ownership?.trustedUids, undefined, 'check-ownership false: owners not checked');
  t.same(noOwners.ownership?.symlinkRoots, ['/etc/pods.d'], 'links still only into the manifest directory');
  const roots = manifestPolicyOf(await resolveAgentConfig({ 'node-name': 'node1', 'policy-check-ownership': 'false', 'policy-symlink-roots': '/opt/pods' }), 0);
  t.same(roots.ownership?.symlinkRoots, ['/opt/pods'], 'and into the roots given');

  const noLinks = manifestPolicyOf(await resolveAgentConfig({ 'node-name': 'node1', 'policy-check-symlinks': 'false' }), 0);
  t.same([...(noLinks.ownership?.trustedUids ?? [])], [0], 'check-symlinks false: owners still checked');
  t.equal(noLinks.ownership?.symlinkRoots, undefined, 'links may lead anywhere');

  const neither = await resolveAgentConfig({ 'node-name': 'node1', 'policy-check-ownership': 'false', 'policy-check-symlinks': 'false' });
  t.equal(manifestPolicyOf(neither).ownership, undefined, 'both off: nothing is checked before a file is read');
});

t.test('the config file: a policy section, lists as YAML sequences (flow or block), normalised', async (t) => {
  const file = await configFile(t, [
    'policy:', //                                          1
    '  check-ownership: true', //                          2
    '  symlink-roots: [/etc/pods.d, /opt/app/pods/]', //   3
    '  privileged: false', //                              4
    '  host-network: false', //                            5
    '  host-pid: false', //                                6
    '  host-ipc: false', //                                7
    '  host-path-prefixes:', //                            8
    '    - /srv/data', //                                  9
    '    - /var/log/app/', //                              10
    '  capabilities: [cap_net_bind_service, CHOWN]', //    11
    '  registries: [localhost, Registry.Example.com:5000/team]', // 12
    '  require-digest: true', //                           13
    '',
  ].join('\n'));
  const config = await resolveAgentConfig({ 'node-name': 'node1' }, file);
  t.match(config, { policyCheckOwnership: true, policyPrivileged: false, policyHostNetwork: false, policyHostPid: false, policyHostIpc: false, policyRequireDigest: true });
  t.same(config.policySymlinkRoots, ['/etc/pods.d', '/opt/app/pods']);
  t.same(config.policyHostPathPrefixes, ['/srv/data', '/var/log/app']);
  t.same(config.policyCapabilities, ['NET_BIND_SERVICE', 'CHOWN']);
  t.same(config.policyRegistries, ['localhost', 'registry.example.com:5000/team']);
  const empty = await configFile(t, 'policy:\n  registries: []\n  capabilities:\n');
  const emptyConfig = await resolveAgentConfig({ 'node-name': 'node1' }, empty);
  t.same(emptyConfig.policyRegistries, [], 'an empty sequence: nothing allowed');
  t.equal(emptyConfig.policyCapabilities, undefined, 'a null value: unset');
});

t.test('flags: lists comma-separated, an empty value an empty list; a flag wins over the file', async (t) => {
  const file = await configFile(t, 'policy:\n  registries: [quay.io]\n');
  const config = await resolveAgentConfig({ 'node-name': 'node1', 'policy-registries': 'localhost, registry.example.com', 'policy-capabilities': '', 'policy-host-network': 'false' }, file);
  t.same(config.policyRegistries, ['localhost', 'registry.example.com']);
  t.same(config.policyCapabilities, []);
  t.equal(config.policyHostNetwork, false);
});

t.test('bad values in the file: file, line, column, key, and the item for a list', async (t) => {
  const lines = (...text: string[]) => configFile(t, `${text.join('\n')}\n`);
  let file = await lines('policy:', '  registries:', '    - localhost', '    - https://quay.io');
  t.equal(await problem({}, file), `${file}:4:7: policy.registries[1]: --policy-registries: "https://quay.io" is not a registry: write its host as images name it (registry.example.com, host:5000, localhost), optionally with a path (quay.io/myorg), without https://`);
  file = await lines('policy:', '  host-path-prefixes: [/srv, data]');
  t.equal(await problem({}, file), `${file}:2:30: policy.host-path-prefixes[1]: --policy-host-path-prefixes: "data" is not an absolute path`);
  file = await lines('policy:', '  capabilities: [NET_ADMIN, "SYS ADMIN"]');
  t.equal(await problem({}, file), `${file}:2:29: policy.capabilities[1]: --policy-capabilities: "SYS ADMIN" is not a capability name (such as NET_BIND_SERVICE)`);
  file = await lines('policy:', '  capabilities: [NET_ADMIN, 5]');
  t.equal(await problem({}, file), `${file}:2:29: policy.capabilities[1]: --policy-capabilities: each item must be a capability name`);
  file = await lines('policy:', '  symlink-roots: /etc/pods.d');
  t.equal(await problem({}, file), `${file}:2:3: policy.symlink-roots: must be a list: a YAML sequence, such as [a, b], or one item a line after "- "`, 'a single value where a list goes');
  file = await lines('policy:', '  registries:', '    - localhost', '    - { host: quay.io }');
  t.equal(await problem({}, file), `${file}:4:7: policy.registries[1]: must be a single value`);
  file = await lines('policy:', '  privileged: [false]');
  t.equal(await problem({}, file), `${file}:2:3: policy.privileged: must be a single value`, 'a list where a single value goes');
  file = await lines('policy:', '  privileged: maybe');
  t.equal(await problem({}, file), `${file}:2:3: policy.privileged: --policy-privileged must be true or false`);
  file = await lines('policy:', '  check-ownership: false', '  check-symlinks: off');
  t.equal(await problem({}, file), `${file}:3:3: policy.check-symlinks: --policy-check-symlinks must be true or false`);
  file = await lines('policy:', '  check-symlinks: false', '  symlink-roots: [/opt/pods]');
  t.equal(await problem({}, file), `${file}:3:3: policy.symlink-roots: --policy-symlink-roots has no effect with --policy-check-symlinks false: remove one`, 'roots nothing reads: named where they are');
  file = await lines('policy:', '  check-symlinks: false');
  t.equal(await problem({ 'policy-symlink-roots': '/opt/pods' }, file), `${file}:2:3: policy.check-symlinks: --policy-symlink-roots has no effect with --policy-check-symlinks false: remove one`, 'roots from a flag: the file line that turned links off');
  file = await lines('policy:', '  host-netwrok: false');
  t.equal(await problem({}, file), `${file}:2:3: policy.host-netwrok: unknown setting (did you mean host-network?)`);
  file = await lines('policy-registries: [localhost]');
  t.equal(await problem({}, file), `${file}:1:1: policy-registries: unknown setting (in a config file it is registries under policy:)`);
});

t.test('bad flag values name the flag and the item', async (t) => {
  t.equal(await problem({ 'policy-registries': 'localhost,docker' }), '--policy-registries: "docker" is not a registry: write its host as images name it (registry.example.com, host:5000, localhost), optionally with a path (quay.io/myorg), without https://');
  t.equal(await problem({ 'policy-host-path-prefixes': '/srv,,/var' }), '--policy-host-path-prefixes: "" is not an absolute path', 'an empty item between commas');
  t.equal(await problem({ 'policy-symlink-roots': 'relative/dir' }), '--policy-symlink-roots: "relative/dir" is not an absolute path');
  t.equal(await problem({ 'policy-check-ownership': 'no' }), '--policy-check-ownership must be true or false');
  t.equal(await problem({ 'policy-check-symlinks': 'no' }), '--policy-check-symlinks must be true or false');
  t.equal(await problem({ 'policy-check-symlinks': 'false', 'policy-symlink-roots': '/opt/pods' }), '--policy-symlink-roots has no effect with --policy-check-symlinks false: remove one');
  t.equal(await problem({ 'policy-require-digest': 'true' }), '', 'a good one is accepted');
});
