// `podvisor doctor`'s judgements, on facts written by hand: the two host quirks of
// ../shared/HOST-NOTES.md (a hard limit below podman's default container ulimits, a hybrid
// cgroup tree with a controller left in its cgroup2 mount) and the states a device can be in
// that this host is not (cgroup v2, podman 5, a group-writable manifest directory, a full disk).
// The reading of the real host is tested end to end in test/e2e/doctor.test.ts.
import t from 'tap';
import {
  cgroupLayoutOf,
  confValue,
  envFileValue,
  formatResult,
  hardLimit,
  hasCapability,
  judgeCgroupVersion,
  judgeDisk,
  judgeHybrid,
  judgeImages,
  judgeManifestDir,
  judgeManifests,
  judgePodman,
  judgeRoot,
  judgeUlimits,
  parsePodmanVersion,
  PODMAN_DEFAULT_ULIMIT,
  tomlStrings,
  type LimitFacts,
} from '../../src/cli/doctor.js';

t.test('a result is one line: level, check, what was found, and the fix after a semicolon', async (t) => {
  t.equal(formatResult({ level: 'ok', check: 'root', found: 'running as root' }), 'ok    root: running as root');
  t.equal(formatResult({ level: 'fail', check: 'x', found: 'broken', fix: 'mend it' }), 'fail  x: broken; mend it');
  t.equal(formatResult({ level: 'warn', check: 'y', found: 'odd' }), 'warn  y: odd');
});

t.test('root', async (t) => {
  t.equal(judgeRoot(0, 'root').level, 'ok');
  const other = judgeRoot(65534, 'nobody');
  t.equal(other.level, 'fail');
  t.match(other.found, /uid 65534 \(nobody\), not root: the agent needs root/);
  t.equal(other.fix, 'run sudo podvisor doctor');
});

t.test('podman version: 4.3 and later are supported', async (t) => {
  t.same(parsePodmanVersion('podman version 4.3.1'), [4, 3, 1]);
  t.same(parsePodmanVersion('podman version 5.0.0-dev'), [5, 0, 0]);
  t.same(parsePodmanVersion('podman version 4.9'), [4, 9, 0]);
  t.equal(parsePodmanVersion('nothing here'), undefined);
  const rows: [string, 'ok' | 'warn' | 'fail'][] = [
    ['podman version 4.3.1', 'ok'],
    ['podman version 4.9.3', 'ok'],
    ['podman version 5.2.0', 'ok'],
    ['podman version 4.2.0', 'fail'],
    ['podman version 3.4.4', 'fail'],
    ['something else', 'warn'],
  ];
  for (const [answer, level] of rows) t.equal(judgePodman('podman', '/usr/bin/podman', { version: answer }).level, level, answer);
  t.equal(formatResult(judgePodman('podman', '/usr/bin/podman', { version: 'podman version 4.2.0' })), 'fail  podman: /usr/bin/podman, version 4.2.0, older than 4.3, the oldest podvisor supports; upgrade podman');
  const missing = judgePodman('/opt/none/podman', '/opt/none/podman', { error: '/opt/none/podman not found: install podman' });
  t.equal(missing.level, 'fail');
  t.equal(missing.found, '/opt/none/podman not found');
  t.match(missing.fix, /apt-get install podman.*PODVISOR_PODMAN in \/etc\/default\/podvisor/);
});

t.test('reading /proc: hard limits and capabilities', async (t) => {
  const limits = [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max processes             96369                96369                processes ',
    'Max open files            1024                 20000                files     ',
    'Max locked memory         unlimited            unlimited            bytes     ',
  ].join('\n');
  t.equal(hardLimit(limits, 'Max open files'), 20000, 'the hard column, not the soft one');
  t.equal(hardLimit(limits, 'Max processes'), 96369);
  t.equal(hardLimit(limits, 'Max locked memory'), Infinity);
  // This host's set lacks bit 24 (CAP_SYS_RESOURCE); a full root set has it.
  t.equal(hasCapability('CapInh:\t0\nCapEff:\t000001fffeffffff\n', 24), false);
  t.equal(hasCapability('CapEff:\t000001ffffffffff\n', 24), true);
  t.equal(hasCapability('no such line', 24), false);
});

t.test('reading containers.conf: the setting in its table, over several lines, comments ignored', async (t) => {
  const conf = [
    '# default_ulimits = ["nofile=1:1"]',
    '[containers]',
    '#default_ulimits = [',
    '#  "nofile=1280:2560",',
    '#]',
    'default_ulimits = [',
    '  "nofile=4096:8192", # a comment',
    "  'nproc=100:200',",
    ']',
    '[engine]',
    'infra_image = "registry.example/pause:3.9"  # "not this"',
    'default_ulimits = ["in the wrong table"]',
  ].join('\n');
  t.same(tomlStrings(confValue(conf, 'containers', 'default_ulimits') ?? ''), ['nofile=4096:8192', 'nproc=100:200']);
  t.same(tomlStrings(confValue(conf, 'engine', 'infra_image') ?? ''), ['registry.example/pause:3.9']);
  t.equal(confValue('[containers]\ndefault_ulimits = []\n', 'containers', 'default_ulimits'), '[]');
  t.equal(confValue('[containers]\n#default_ulimits = []\n', 'containers', 'default_ulimits'), undefined, 'a commented-out line sets nothing');
  t.equal(confValue('default_ulimits = []\n', 'containers', 'default_ulimits'), undefined, 'outside [containers] it is not the setting');
  t.equal(envFileValue('# PODVISOR_PODMAN=/no\nPODVISOR_PODMAN="/usr/local/bin/podman"\n', 'PODVISOR_PODMAN'), '/usr/local/bin/podman');
  t.equal(envFileValue('export PODVISOR_PODMAN=/opt/podman\n', 'PODVISOR_PODMAN'), '/opt/podman');
  t.equal(envFileValue('OTHER=1\n', 'PODVISOR_PODMAN'), undefined);
});

t.test('host quirk 1: a hard limit below podman\'s default container ulimits', async (t) => {
  // This host as found: hard limit 20000, no CAP_SYS_RESOURCE, nothing in containers.conf.
  const host: LimitFacts = { nofileHard: 20000, nprocHard: 96369, canRaise: false, nrOpen: 1_048_576, setting: undefined };
  const broken = judgeUlimits(host);
  t.equal(broken.level, 'fail');
  t.equal(formatResult(broken), `fail  ulimits: hard limits: 20000 open files, 96369 processes, below what podman sets for containers (nofile ${PODMAN_DEFAULT_ULIMIT}, nproc ${PODMAN_DEFAULT_ULIMIT}: podman's default, as containers.conf sets no default_ulimits), and no CAP_SYS_RESOURCE to raise them: every container fails with crun's "setrlimit RLIMIT_NOFILE: Operation not permitted"; set default_ulimits = [] under [containers] in /etc/containers/containers.conf`);
  const rows: { rule: string; facts: Partial<LimitFacts>; level: 'ok' | 'fail'; found?: RegExp }[] = [
    { rule: 'the fix: default_ulimits = [] keeps the host\'s limits', facts: { setting: { items: [], file: '/etc/containers/containers.conf' } }, level: 'ok', found: /sets default_ulimits = \[\]/ },
    { rule: 'root with CAP_SYS_RESOURCE raises the limit (systemd devices)', facts: { canRaise: true }, level: 'ok' },
    { rule: 'but not past fs.nr_open', facts: { canRaise: true, nrOpen: 65536 }, level: 'fail' },
    { rule: 'hard limits at podman\'s default', facts: { nofileHard: PODMAN_DEFAULT_ULIMIT, nprocHard: Infinity }, level: 'ok' },
    { rule: 'a list that sets nofile low still gets podman\'s nproc', facts: { setting: { items: ['nofile=4096:8192'], file: 'c.conf' } }, level: 'fail', found: /\(nproc 1048576: from c\.conf's default_ulimits\).*RLIMIT_NPROC/ },
    { rule: 'a list that sets both within the host\'s limits', facts: { setting: { items: ['nofile=4096:8192', 'nproc=100:200'], file: 'c.conf' } }, level: 'ok', found: /c\.conf's default_ulimits can be set/ },
    { rule: 'a list that asks for more than the hard limit', facts: { setting: { items: ['nofile=65536:65536', 'nproc=100:200'], file: 'c.conf' } }, level: 'fail', found: /\(nofile 65536: from/ },
  ];
  for (const row of rows) {
    const result = judgeUlimits({ ...host, ...row.facts });
    t.equal(result.level, row.level, row.rule);
    if (row.found) t.match(result.found, row.found, row.rule);
  }
});

t.test('cgroups: the layout from /proc/self/mounts', async (t) => {
  const v2 = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n';
  const hybrid = [
    'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
    'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
    'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
    'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
  ].join('\n');
  const v1 = 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n';
  t.same(cgroupLayoutOf(v2), { kind: 'v2' });
  t.same(cgroupLayoutOf(hybrid), { kind: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified' });
  t.same(cgroupLayoutOf(v1), { kind: 'v1' });
  t.same(cgroupLayoutOf('proc /proc proc rw 0 0\n'), { kind: 'none' });

  t.equal(formatResult(judgeCgroupVersion({ kind: 'v2' }, 4)), 'ok    cgroups: v2 (unified)');
  t.equal(judgeCgroupVersion({ kind: 'v1' }, 4).level, 'ok', 'podman 4 runs on v1');
  t.equal(judgeCgroupVersion({ kind: 'v1' }, 5).level, 'warn', 'podman 5 deprecates v1');
  t.equal(judgeCgroupVersion({ kind: 'none' }, 4).level, 'fail');
});

t.test('host quirk 2: a hybrid tree with a controller left in its cgroup2 mount', async (t) => {
  const broken = judgeHybrid({ kind: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified', unifiedControllers: ['hugetlb'] });
  t.equal(formatResult(broken), 'fail  hybrid cgroups: /sys/fs/cgroup/unified still holds hugetlb: every container fails with crun\'s "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"; move it to cgroup v1: mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb');
  const two = judgeHybrid({ kind: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified', unifiedControllers: ['hugetlb', 'rdma'] });
  t.match(two.fix, /^move them to cgroup v1: .*-o hugetlb .* && .*-o rdma cgroup \/sys\/fs\/cgroup\/rdma$/);
  t.equal(judgeHybrid({ kind: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified', unifiedControllers: [] }).level, 'ok', 'the fix applied: an empty cgroup2 mount');
  t.equal(formatResult(judgeHybrid({ kind: 'v2' })), 'ok    hybrid cgroups: not hybrid (cgroups v2)');
});

t.test('the manifest directory: there, owned by root, writable by root alone', async (t) => {
  const dir = (uid: number, mode: number) => ({ isDirectory: () => true, uid, mode: 0o040000 | mode });
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', dir(0, 0o755))), 'ok    manifest dir: /etc/pods.d, owned by root, mode 0755');
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', dir(0, 0o775))), 'warn  manifest dir: /etc/pods.d is group-writable (mode 0775): whoever can write there runs pods as root; chmod go-w /etc/pods.d');
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', dir(1000, 0o777))), 'warn  manifest dir: /etc/pods.d is owned by uid 1000, not root and world-writable (mode 0777): whoever can write there runs pods as root; chown root: /etc/pods.d && chmod go-w /etc/pods.d');
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', { error: "ENOENT: no such file or directory, stat '/etc/pods.d'" })), 'fail  manifest dir: /etc/pods.d does not exist: the agent runs no pods; mkdir -m 0755 /etc/pods.d');
  t.equal(judgeManifestDir('/etc/pods.d', { isDirectory: () => false, uid: 0, mode: 0o100644 }).level, 'fail');
  // The agent checks ownership (the default): it refuses every manifest there, so doctor fails.
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', dir(0, 0o775), true)), 'fail  manifest dir: /etc/pods.d is group-writable (mode 0775): the agent refuses every manifest in it (policy.check-ownership); chmod go-w /etc/pods.d');
  t.equal(formatResult(judgeManifestDir('/etc/pods.d', dir(0, 0o755), true)), 'ok    manifest dir: /etc/pods.d, owned by root, mode 0755');
});

t.test('manifests and images', async (t) => {
  t.equal(formatResult(judgeManifests('/etc/pods.d', [{ path: '/etc/pods.d/a.yaml', pods: [{}, {}] as never, hasErrors: false }])), 'ok    manifests: 1 file(s) in /etc/pods.d, 2 valid pod(s)');
  t.equal(formatResult(judgeManifests('/d', [{ path: '/d/a.yaml', pods: [], hasErrors: true }])), 'warn  manifests: 1 file(s) in /d, 0 valid pod(s); with errors: a.yaml; podvisor validate /d names each error');
  t.equal(formatResult(judgeImages([])), 'ok    images: the manifests name no image');
  t.equal(formatResult(judgeImages([{ image: 'localhost/a:1', present: true, alwaysPulled: false }])), 'ok    images: all 1 present: localhost/a:1');
  const missing = judgeImages([{ image: 'localhost/a:1', present: true, alwaysPulled: false }, { image: 'registry.example/b:2', present: false, alwaysPulled: false }]);
  t.equal(missing.level, 'warn', 'missing is a warning: a registry may be reachable on the device');
  t.match(missing.found, /not in podman's storage: registry\.example\/b:2; their pods start only if a registry is reachable/);
  const always = judgeImages([{ image: 'busybox', present: true, alwaysPulled: true }]);
  t.equal(always.level, 'warn');
  t.match(always.found, /pulled again at each start \(imagePullPolicy: Always.*\): busybox/);
});

t.test('free disk space', async (t) => {
  const GiB = 1024 ** 3;
  const fs = (free: number, total: number) => ({ bsize: 4096, bavail: free / 4096, blocks: total / 4096 });
  t.equal(formatResult(judgeDisk('disk (state)', '/var/lib', fs(77.5 * GiB, 252 * GiB))), 'ok    disk (state): 77.5 GiB free of 252.0 GiB on /var/lib');
  t.equal(judgeDisk('d', '/', fs(0.5 * GiB, 252 * GiB)).level, 'warn', 'under 1 GiB');
  t.equal(judgeDisk('d', '/', fs(4 * GiB, 100 * GiB)).level, 'warn', 'under 5 %');
  t.equal(judgeDisk('d', '/', fs(2 * GiB, 8 * GiB)).level, 'ok', 'a small device with room');
  t.equal(formatResult(judgeDisk('d', '/', fs(64 * 1024 ** 2, 8 * GiB))), 'fail  d: 64.0 MiB free of 8.0 GiB on /; free some space');
});
