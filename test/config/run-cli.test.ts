// `podvisor run --config FILE` as a user meets it, through the built CLI (dist/podvisor.mjs; build
// with `npm run build` first): a bad config file is one line on stderr naming file:line:col and key, exit
// status 2, and flags win over the file. Every case here has an error, so no agent is started.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t, { type Test } from 'tap';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(REPO, 'dist', 'podvisor.mjs');

/** Whether the bundle has the run command's config handling, built after its sources last changed. */
async function builtFresh(): Promise<string | undefined> {
  const built = await stat(CLI).catch(() => undefined);
  if (!built) return 'dist/podvisor.mjs is missing: build with `npm run build` first';
  for (const source of ['src/cli.ts', 'src/cli/run.ts', 'src/config/agent-config.ts', 'src/config/config-file.ts']) {
    if (built.mtimeMs < (await stat(join(REPO, source))).mtimeMs) return `dist/podvisor.mjs is older than ${source}: build with \`npm run build\` first`;
  }
  return undefined;
}

interface Dirs {
  dir: string;
  file: string;
  /** Flags that keep a run (if one ever got that far) off the machine's directories and pods. */
  safe: string[];
}

async function setUp(t: Test, text: string): Promise<Dirs> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-run-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'podvisor.yaml');
  await writeFile(file, text);
  return { dir, file, safe: ['--manifest-dir', join(dir, 'pods.d'), '--state-dir', join(dir, 'state'), '--node-name', `config-test-${randomBytes(4).toString('hex')}`] };
}

async function podvisorRun(...args: string[]) {
  // A usage error ends the CLI before any agent starts; a run still going after 15 s is an agent
  // that should never have started, and the test fails on it.
  const result = await execa(process.execPath, [CLI, 'run', ...args], { reject: false, stdin: 'ignore', timeout: 15_000, stripFinalNewline: false });
  if (result.timedOut) throw new Error(`podvisor run ${args.join(' ')} started an agent instead of failing: ${result.stderr.slice(0, 500)}`);
  return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

t.test('podvisor run --config', async (t) => {
  const stale = await builtFresh();
  if (stale) {
    t.fail(stale);
    return;
  }

  t.test('an unknown key: exit 2, one line naming file:line:col, the key and the near miss', async (t) => {
    const { file, safe } = await setUp(t, 'node-name: edge-1\nmanifest_dir: /etc/pods.d\n');
    const result = await podvisorRun('--config', file, ...safe);
    t.equal(result.code, 2);
    t.equal(result.stdout, '');
    t.equal(result.stderr, `podvisor: ${file}:2:1: manifest_dir: unknown setting (did you mean manifest-dir?)\n`);
  });

  t.test('an unknown key in a section', async (t) => {
    const { file, safe } = await setUp(t, 'api:\n  address: 127.0.0.1:0\n  adress: 127.0.0.1:0\n');
    const result = await podvisorRun('--config', file, ...safe);
    t.equal(result.code, 2);
    t.equal(result.stderr, `podvisor: ${file}:3:3: api.adress: unknown setting (did you mean address?)\n`);
  });

  t.test('a bad value in the file: its place and key, then the flag\'s words', async (t) => {
    const { file, safe } = await setUp(t, 'log-level: info\napi:\n  address: 10255:localhost\n');
    const result = await podvisorRun('--config', file, ...safe);
    t.equal(result.code, 2);
    t.equal(result.stderr, `podvisor: ${file}:3:3: api.address: --api-address must be HOST:PORT (for example 127.0.0.1:10255), not "10255:localhost"\n`);
  });

  t.test('a YAML syntax error: its place', async (t) => {
    const { file, safe } = await setUp(t, 'manifest-dir: [oops\nlog-level: info\n');
    const result = await podvisorRun('--config', file, ...safe);
    t.equal(result.code, 2);
    t.match(result.stderr, new RegExp(`^podvisor: ${file}:2:1: [^\\n]+\\n$`));
  });

  t.test('a flag wins over the file', async (t) => {
    // The file's address is bad; the flag's is good. If the file won, its error would be the
    // one reported (--api-address comes before --publish-heartbeat); the flag's bad heartbeat
    // keeps the agent from starting either way.
    const { file, safe } = await setUp(t, 'api:\n  address: nope\n');
    const result = await podvisorRun('--config', file, '--api-address', '127.0.0.1:0', '--publish-heartbeat', 'hourly', ...safe);
    t.equal(result.code, 2);
    t.equal(result.stderr, 'podvisor: --publish-heartbeat must be a cron expression (for example "* * * * *", every minute)\n', 'the flag\'s own error, not the file\'s');
    const fileWins = await podvisorRun('--config', file, '--publish-heartbeat', 'hourly', ...safe);
    t.equal(fileWins.stderr, `podvisor: ${file}:2:3: api.address: --api-address must be HOST:PORT (for example 127.0.0.1:10255), not "nope"\n`, 'without the flag, the file\'s value is the one used');
  });

  t.test('the file\'s value is used where no flag is given, and named as the file\'s', async (t) => {
    const { file, safe } = await setUp(t, 'resync-interval: 30\npublish:\n  webhook: https://fleet.example/pods\n  heartbeat: "61 * * * *"\n');
    const result = await podvisorRun('--config', file, '--relist-interval', '5', ...safe);
    t.equal(result.code, 2);
    t.equal(result.stderr, `podvisor: ${file}:4:3: publish.heartbeat: --publish-heartbeat must be a cron expression (for example "* * * * *", every minute)\n`);
  });

  t.test('a config file that is not there', async (t) => {
    const { dir, safe } = await setUp(t, '');
    const missing = join(dir, 'nope.yaml');
    const result = await podvisorRun('--config', missing, ...safe);
    t.equal(result.code, 2);
    t.match(result.stderr, new RegExp(`^podvisor: --config ${missing}: ENOENT[^\\n]*\\n$`));
  });

  t.test('--config without a file', async (t) => {
    const result = await podvisorRun('--config');
    t.equal(result.code, 2);
    t.match(result.stderr, /^podvisor run: .*--config.*\(see podvisor run --help\)\n$/);
  });

  t.test('run --help mentions --config', async (t) => {
    const result = await podvisorRun('--help');
    t.equal(result.code, 0);
    t.match(result.stdout, /--config FILE/);
  });
});
