// The built command line as a user meets it (no podman needed): version, help for every
// command, usage errors as one line with exit status 2, and `validate` on good and bad files.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { CLI, IMAGE, REPO } from './harness.js';

/** Runs the built CLI and returns what a shell would see. */
async function podvisor(...args: string[]) {
  const result = await execa(process.execPath, [CLI, ...args], { reject: false, stdin: 'ignore', timeout: 30_000, stripFinalNewline: false });
  return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

const GOOD = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: ${IMAGE}
      command: ["sleep", "3600"]
`;

// Line 7, column 7 is where the first container's mapping starts: the field that is missing
// would belong there.
const MISSING_IMAGE = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      command: ["sleep", "3600"]
`;

const NOT_A_LIST = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers: 3
`;

t.test('version prints the package version', async (t) => {
  const result = await podvisor('version');
  t.equal(result.code, 0);
  t.equal(result.stdout, `podvisor ${version}\n`);
  t.equal(result.stderr, '');
});

t.test('an unknown flag is one line on stderr and exit status 2', async (t) => {
  const result = await podvisor('run', '--bogus');
  t.equal(result.code, 2);
  t.equal(result.stdout, '');
  t.equal(result.stderr, "podvisor run: unknown flag '--bogus' (see podvisor run --help)\n");
  t.equal(result.stderr.split('\n').length, 2, 'exactly one line');
});

t.test('run as another user than root: one line saying so, exit status 1, nothing started', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-nonroot-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const result = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-u', 'NODE_OPTIONS', process.execPath, CLI, 'run', '--manifest-dir', dir, '--state-dir', join(dir, 'state')],
    // Without tap's NODE_OPTIONS (added to every child it spawns): its hooks write into .tap/, root's.
    { reject: false, stdin: 'ignore', timeout: 30_000 });
  t.equal(result.exitCode, 1);
  t.equal(result.stderr, 'podvisor run must run as root (it drives rootful podman); running as uid 65534: use sudo, or the systemd service');
  t.equal(result.stdout, '', 'no log line: the agent never started');
});

t.test('a bad flag value names its flag, exit status 2', async (t) => {
  const result = await podvisor('run', '--relist-interval', '0', '--manifest-dir', '/nonexistent', '--state-dir', '/nonexistent');
  t.equal(result.code, 2);
  t.equal(result.stdout, '');
  t.equal(result.stderr, 'podvisor: --relist-interval must be at least 1\n');
});

t.test('an unknown command is a usage error', async (t) => {
  const result = await podvisor('frobnicate');
  t.equal(result.code, 2);
  t.equal(result.stderr, "podvisor: unknown command 'frobnicate' (see podvisor --help)\n");
});

t.test('--help for each command exits 0 with its usage', async (t) => {
  const cases: [string[], string][] = [
    [['--help'], 'Usage: podvisor <command> [flags]\n'],
    [['run', '--help'], 'Usage: podvisor run [flags]\n'],
    [['validate', '--help'], 'Usage: podvisor validate [--config FILE] [--node-name NAME] PATH...\n'],
    [['version', '--help'], 'Usage: podvisor version\n'],
  ];
  for (const [args, firstLine] of cases) {
    const result = await podvisor(...args);
    t.equal(result.code, 0, `${args.join(' ')} exits 0`);
    t.equal(result.stdout.slice(0, firstLine.length), firstLine, `${args.join(' ')} prints its usage`);
    t.equal(result.stderr, '', `${args.join(' ')} writes nothing to stderr`);
  }
  const run = await podvisor('run', '--help');
  for (const flag of ['--manifest-dir', '--node-name', '--state-dir', '--resync-interval', '--relist-interval', '--backoff-initial', '--log-level', '--log-format']) {
    t.match(run.stdout, flag, `run --help names ${flag}`);
  }
});

t.test('validate', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-e2e-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  const missingImage = join(dir, 'missing-image.yaml');
  const notAList = join(dir, 'not-a-list.yaml');
  await writeFile(good, GOOD);
  await writeFile(missingImage, MISSING_IMAGE);
  await writeFile(notAList, NOT_A_LIST);

  t.test('a good file exits 0 and prints no findings', async (t) => {
    const result = await podvisor('validate', '--node-name', 'e2e-cli', good);
    t.equal(result.code, 0);
    t.equal(result.stdout, '');
    t.equal(result.stderr, '1 file(s), 1 valid pod(s)\n');
  });

  t.test('a bad file exits 1 and prints file:line:col: field: message', async (t) => {
    const result = await podvisor('validate', '--node-name', 'e2e-cli', missingImage);
    t.equal(result.code, 1);
    t.equal(result.stdout, `${missingImage}:7:7: spec.containers[0].image: Required\n`);
    t.equal(result.stderr, '1 file(s), 0 valid pod(s), with errors\n');
  });

  t.test('a wrong type is named with its field', async (t) => {
    const result = await podvisor('validate', '--node-name', 'e2e-cli', notAList);
    t.equal(result.code, 1);
    t.equal(result.stdout, `${notAList}:6:3: spec.containers: must be a list, got number\n`);
  });

  t.test('a directory is validated file by file, and one bad file fails it', async (t) => {
    const result = await podvisor('validate', '--node-name', 'e2e-cli', dir);
    t.equal(result.code, 1);
    t.equal(result.stdout, [
      `${missingImage}:7:7: spec.containers[0].image: Required`,
      `${notAList}:6:3: spec.containers: must be a list, got number`,
      '',
    ].join('\n'));
    t.equal(result.stderr, '3 file(s), 1 valid pod(s), with errors\n');
  });

  t.test('a missing path is reported and fails', async (t) => {
    const result = await podvisor('validate', join(dir, 'absent.yaml'));
    t.equal(result.code, 1);
    t.match(result.stdout, new RegExp(`^${join(dir, 'absent.yaml').replace(/[.]/g, '\\.')}: .*ENOENT`));
  });

  t.test('no path is a usage error', async (t) => {
    const result = await podvisor('validate');
    t.equal(result.code, 2);
    t.equal(result.stderr, 'podvisor validate: no PATH given (see podvisor validate --help)\n');
  });
});

t.test('validate goes on past a hostile file, naming each, and never blocks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-e2e-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a-alias.yaml'), 'a: *nowhere\n');
  await execa('mkfifo', [join(dir, 'b-pipe.yaml')]);
  await writeFile(join(dir, 'c-good.yaml'), GOOD);
  const result = await podvisor('validate', '--node-name', 'e2e-cli', dir, join(dir, 'b-pipe.yaml'));
  t.equal(result.code, 1);
  t.match(result.stdout, new RegExp(`^${join(dir, 'a-alias.yaml')}:1:1: YAML: Unresolved alias`, 'm'), 'the unresolved alias is its file\'s finding');
  t.match(result.stdout, /b-pipe\.yaml:1:1: not a regular file \(a FIFO\)/, 'the FIFO is refused, not read');
  t.equal(result.stderr, '4 file(s), 1 valid pod(s), with errors\n', 'and the good file after them was read');
});

t.test('a start that cannot proceed exits 1 at once, with the reason', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-e2e-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'file'), '');
  const result = await podvisor('run', '--manifest-dir', dir, '--state-dir', join(dir, 'file', 'state'), '--log-format', 'json');
  t.equal(result.code, 1);
  t.match(result.stderr, /"event":"StartFailed".*cannot start: ENOTDIR|cannot start: ENOTDIR.*"event":"StartFailed"/);
});
