// The config file the packages install (packaging/config.yaml) must be a valid config file that
// changes nothing, and each of its commented-out settings, uncommented, must be accepted as is:
// an operator who removes a '#' gets what the comment says, not an error.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseAgentConfig, SETTINGS } from '../../src/config/agent-config.js';
import { readConfigFile } from '../../src/config/config-file.js';

const PACKAGED = new URL('../../packaging/config.yaml', import.meta.url);

t.test('the packaged config file sets nothing', async (t) => {
  const { values } = await readConfigFile(PACKAGED.pathname);
  t.same([...values.keys()], [], 'every setting is commented out');
});

t.test('uncommented, every example setting is accepted', async (t) => {
  const text = await readFile(PACKAGED, 'utf8');
  // "# key: value" lines (and "# section:" headers) become live; prose comments stay comments.
  const live = text
    .split('\n')
    .map((line) => line.replace(/^# ?(\s*[a-z-]+:( .*)?)$/, '$1'))
    .join('\n');
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-packaged-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  // Webhook and kubeconfig are alternatives: keep the webhook example.
  await writeFile(file, live.replace(/^\s*kubeconfig:.*$/m, ''));
  const { values, origins } = await readConfigFile(file);
  t.ok(values.size >= 15, `${values.size} settings read`);
  const raw = Object.fromEntries(values);
  // Every setting's default under what the file sets, as `podvisor run` resolves them.
  const defaults = Object.fromEntries(SETTINGS.flatMap((setting) => ('fallback' in setting ? [[setting.field, setting.fallback]] : [])));
  const config = await parseAgentConfig({ ...defaults, ...raw }, origins);
  t.same(config.apiAddress, { host: '127.0.0.1', port: 10255 }, 'the API example');
  t.equal(config.publishWebhook, 'https://fleet.example.com/nodes/pods', 'the webhook example');
  t.equal(config.nodeName, 'edge-01');
  t.same(config.policyRegistries, ['localhost', 'registry.example.com'], 'the policy examples, lists included');
  t.equal(config.policyHostNetwork, false);
});
