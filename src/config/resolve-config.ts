// The agent's configuration as every command reads it: flags first, then the config file, then
// each setting's default; `podvisor run` and the commands that only need the state directory
// (status, describe, logs, doctor) resolve it the same way.
import { defaultNodeName } from '../manifest/identity.js';
import { parseAgentConfig, SETTINGS, type AgentConfig, type Origin } from './agent-config.js';
import { readConfigFile } from './config-file.js';

/**
 * The configuration from flag values (by flag name, without the dashes) and the config file, if
 * one is named (read anew on each call); a UsageError names the flag, or the file's line and column.
 */
export async function resolveAgentConfig(flags: Readonly<Record<string, unknown>>, configFile?: string): Promise<AgentConfig> {
  const file = configFile === undefined ? undefined : await readConfigFile(configFile);
  const raw: Record<string, unknown> = {};
  const origins = new Map<string, Origin>();
  for (const setting of SETTINGS) {
    const flag = flags[setting.flag];
    if (flag !== undefined) {
      raw[setting.field] = flag;
      origins.set(setting.field, { flag: `--${setting.flag}` });
    } else if (file?.values.get(setting.field) !== undefined) {
      raw[setting.field] = file.values.get(setting.field);
      const origin = file.origins.get(setting.field);
      if (origin) origins.set(setting.field, origin);
    } else if ('fallback' in setting) raw[setting.field] = setting.fallback;
  }
  raw.nodeName ??= defaultNodeName();
  return await parseAgentConfig(raw, origins);
}
