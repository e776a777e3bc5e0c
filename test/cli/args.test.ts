// Where the reading commands (status, describe, logs, doctor) take their settings from: a flag,
// else the config file (--config, or the packaged default when it is there), else the defaults.
// The default file's path is given to each call, so the test never touches /etc.
import t from 'tap';
import { join } from 'node:path';
import { SETTINGS } from '../../src/config/agent-config.js';
import { RUN_HELP } from '../../src/cli/run.js';
import { commandList, COMMANDS, configFileFor, DEFAULT_STATE_DIR, parseCommandArgs, readAgentConfigFile, stateDirFor } from '../../src/cli/args.js';

t.test('the state directory: --state-dir, else the config file\'s, else /var/lib/podvisor', async (t) => {
  const dir = t.testdir({
    'config.yaml': 'state-dir: /srv/podvisor-state\n',
    'other.yaml': 'state-dir: /srv/other\n',
    'no-state-dir.yaml': 'log-level: debug\n',
  });
  const fileDefault = join(dir, 'config.yaml');
  const absent = join(dir, 'absent.yaml');
  const rows: { rule: string; values: Record<string, string>; defaultFile: string; stateDir: string; file: string | undefined }[] = [
    { rule: 'nothing given, no default file: the default', values: {}, defaultFile: absent, stateDir: DEFAULT_STATE_DIR, file: undefined },
    { rule: 'nothing given, the default file there: its state-dir', values: {}, defaultFile: fileDefault, stateDir: '/srv/podvisor-state', file: fileDefault },
    { rule: '--config: that file\'s state-dir', values: { config: join(dir, 'other.yaml') }, defaultFile: fileDefault, stateDir: '/srv/other', file: join(dir, 'other.yaml') },
    { rule: '--state-dir wins over --config', values: { config: join(dir, 'other.yaml'), 'state-dir': '/flag' }, defaultFile: fileDefault, stateDir: '/flag', file: join(dir, 'other.yaml') },
    { rule: '--state-dir alone: the default file is not read', values: { 'state-dir': '/flag' }, defaultFile: fileDefault, stateDir: '/flag', file: undefined },
    { rule: 'a file without state-dir: the default', values: { config: join(dir, 'no-state-dir.yaml') }, defaultFile: absent, stateDir: DEFAULT_STATE_DIR, file: join(dir, 'no-state-dir.yaml') },
  ];
  for (const row of rows) {
    t.equal(configFileFor(row.values, row.defaultFile), row.file, `${row.rule}: the file`);
    t.equal(await stateDirFor(row.values, row.defaultFile), row.stateDir, row.rule);
  }
});

t.test('a bad config file is a usage error naming its file, line and column, as run reports it', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'state-dir: /srv/x\napi:\n  adress: 127.0.0.1:1\n', 'bad-value.yaml': 'relist-interval: 0\n' });
  await t.rejects(stateDirFor({ config: join(dir, 'bad.yaml') }), { code: 'E_USAGE', message: `${join(dir, 'bad.yaml')}:3:3: api.adress: unknown setting (did you mean address?)` });
  await t.rejects(readAgentConfigFile(join(dir, 'bad-value.yaml')), { message: `${join(dir, 'bad-value.yaml')}:1:1: relist-interval: --relist-interval must be at least 1` });
  await t.rejects(stateDirFor({ config: join(dir, 'absent.yaml') }), { code: 'E_USAGE', message: /^--config .*absent\.yaml: ENOENT/ });
  // --state-dir given: the file is not read, so it cannot fail the command.
  t.equal(await stateDirFor({ config: undefined, 'state-dir': '/flag' }, join(dir, 'bad.yaml')), '/flag');
});

t.test('the config file\'s settings with run\'s defaults for what it leaves out', async (t) => {
  const dir = t.testdir({ 'c.yaml': 'manifest-dir: /srv/pods\nnode-name: Edge-01\n' });
  const config = await readAgentConfigFile(join(dir, 'c.yaml'));
  t.equal(config.manifestDir, '/srv/pods');
  t.equal(config.nodeName, 'edge-01', 'lower-cased as run does');
  t.equal(config.stateDir, DEFAULT_STATE_DIR);
  t.equal(config.relistIntervalSeconds, 10);
});

t.test('the command table: each command once, listed in --help, and its flags parse', async (t) => {
  const names = COMMANDS.map((spec) => spec.name);
  t.same([...new Set(names)], names, 'no command twice');
  const list = commandList();
  for (const name of names) t.match(list, new RegExp(`^  ${name}\\b`, 'm'), `--help lists ${name}`);
  t.match(list, /^ {2}doctor {2,}check this host/m);
  t.match(list, /^ {2}completion bash\|zsh {2,}print a shell completion script/m);
  for (const spec of COMMANDS) {
    for (const [flag, option] of Object.entries(spec.options)) {
      const argv = option.type === 'boolean' ? [`--${flag}`] : [`--${flag}`, 'x'];
      t.doesNotThrow(() => parseCommandArgs(spec.name, argv, spec.options, true), `${spec.name} --${flag}`);
    }
  }
});

t.test('run --help lists every setting run takes, so none is known only from the manual', async (t) => {
  for (const setting of SETTINGS) t.match(RUN_HELP, new RegExp(`^ {2}--${setting.flag}\\b`, 'm'), `--${setting.flag}`);
});
