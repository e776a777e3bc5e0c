// The optional config file (`podvisor run --config FILE`): YAML whose keys are the flags' names,
// the API's and the publisher's settings in their own sections:
//
//   manifest-dir: /etc/pods.d
//   api:
//     address: 127.0.0.1:10255
//   publish:
//     webhook: https://fleet.example/pods
//     token-file: /etc/podvisor/publish-token
//
// A list-valued setting (policy.registries, ...) takes a YAML sequence:
//
//   policy:
//     registries: [localhost, registry.example.com]
//
// Flags given on the command line win over the file. An unknown key or a bad value names the
// file, line, column and key (and the item of a list: policy.registries[1]).
import { readFile } from 'node:fs/promises';
import { UsageError, errorMessage } from '../errors.js';
import { parseManifestText } from '../manifest/parse.js';
import { isListSetting, SETTINGS, type Origin } from './agent-config.js';

export interface ConfigFileValues {
  /** Values by AgentConfig field. */
  values: Map<string, unknown>;
  origins: Map<string, Origin>;
}

const SECTIONS = new Set<string>(SETTINGS.filter((setting) => setting.key.length === 2).map((setting) => setting.key[0]));

/** Edit distance, for a did-you-mean on a misspelt key. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The known key `word` most likely meant: the same but for case and separators, or one or two typos. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  const plain = (text: string) => text.toLowerCase().replace(/[_-]/g, '');
  const same = candidates.find((candidate) => plain(candidate) === plain(word));
  if (same) return same;
  const ranked = candidates.map((candidate) => ({ candidate, far: distance(plain(word), plain(candidate)) })).sort((a, b) => a.far - b.far);
  return ranked[0] && ranked[0].far <= 2 ? ranked[0].candidate : undefined;
}

/** Reads and checks a config file; every problem is a UsageError with its place. */
export async function readConfigFile(file: string): Promise<ConfigFileValues> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--config ${file}: ${errorMessage(error)}`, { cause: error });
  }
  const documents = parseManifestText(text);
  const values = new Map<string, unknown>();
  const origins = new Map<string, Origin>();
  if (documents.length === 0) return { values, origins };
  const [document] = documents;
  if (!document || documents.length > 1) {
    const position = documents[1]?.locate([]) ?? { line: 1, column: 1 };
    throw new UsageError(`${file}:${position.line}:${position.column}: a config file holds one YAML document`);
  }
  const syntax = document.syntaxErrors[0];
  if (syntax) throw new UsageError(`${file}:${syntax.position.line}:${syntax.position.column}: ${syntax.message}`);
  const at = (key: readonly string[]) => document.locate([...key]);
  const fail = (key: readonly string[], message: string): never => {
    const position = at(key);
    throw new UsageError(`${file}:${position.line}:${position.column}: ${key.length > 0 ? `${key.join('.')}: ` : ''}${message}`);
  };
  const root = document.value;
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return fail([], 'the file must be a mapping of settings');

  const take = (key: readonly string[], value: unknown) => {
    const setting = SETTINGS.find((candidate) => candidate.key.join('.') === key.join('.'));
    if (!setting) {
      const siblings = SETTINGS.filter((candidate) => candidate.key.length === key.length && candidate.key.slice(0, -1).join('.') === key.slice(0, -1).join('.')).map((candidate) => candidate.key.at(-1)!);
      // `api-address:` at the top: the flag's name, which in a file belongs in its section.
      const flagLike = key.length === 1 ? SETTINGS.find((candidate) => candidate.key.length === 2 && candidate.flag === key[0]) : undefined;
      if (flagLike) return fail(key, `unknown setting (in a config file it is ${flagLike.key[1]} under ${flagLike.key[0]}:)`);
      const hint = closest(key.at(-1)!, siblings);
      return fail(key, `unknown setting${hint ? ` (did you mean ${hint}?)` : `; known here: ${siblings.join(', ')}`}`);
    }
    const position = at(key);
    const origin = { file, line: position.line, column: position.column, key: key.join('.') };
    if (isListSetting(setting) && value !== null) {
      if (!Array.isArray(value)) return fail(key, 'must be a list: a YAML sequence, such as [a, b], or one item a line after "- "');
      // Each item a single value, named by its index; its place kept for the schema's errors.
      const items = value.map((_: unknown, index) => document.locate([...key, index]));
      value.forEach((item: unknown, index) => {
        const where = items[index] ?? position;
        if (item === null || typeof item === 'object') throw new UsageError(`${file}:${where.line}:${where.column}: ${origin.key}[${index}]: must be a single value`);
      });
      values.set(setting.field, value);
      origins.set(setting.field, { ...origin, items });
      return;
    }
    if (value !== null && typeof value === 'object') return fail(key, 'must be a single value');
    values.set(setting.field, value === null ? undefined : value);
    origins.set(setting.field, origin);
  };
  for (const [name, value] of Object.entries(root)) {
    if (SECTIONS.has(name)) {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) fail([name], 'must be a mapping');
      for (const [child, childValue] of Object.entries(value as Record<string, unknown>)) take([name, child], childValue);
    } else take([name], value);
  }
  return { values, origins };
}
