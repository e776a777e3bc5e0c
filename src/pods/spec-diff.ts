// What a replace changes, as an operator reads it: the field paths whose value differs between
// the spec a pod runs and the spec its file asks for now, each with its old and new value
// (`spec.containers[app].image: busybox:1 -> busybox:2`). `podvisor plan` prints it so a change
// can be checked before the agent acts on it. Pure: two pods in, a list of changes out.
//
// The pods compared are the defaulted ones the config hash is made from, so the diff is empty
// exactly when the hash is the same (a spelt-out default is no change). What podvisor adds to a
// pod of its own (the uid, which follows the hash; the config.* annotations; the node's name in
// the pod's name) is left out: it changes with any change and says nothing.
import { isDeepStrictEqual } from 'node:util';
import { CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION } from '../manifest/identity.js';
import type { PodManifest } from '../manifest/pod-schema.js';
import { escapeText } from '../log/escape.js';
import { REDACTED_ENV_VALUE } from '../mirror/env-values.js';

/** One field whose value differs. A side that is absent was not set (or the list item was not there). */
export interface FieldChange {
  /** The field path, list items by name where they have one: `spec.containers[app].env[MODE].value`. */
  path: string;
  from?: unknown;
  to?: unknown;
}

const PODVISOR_ANNOTATIONS = new Set([CONFIG_HASH_ANNOTATION, CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION]);

/** The part of a pod its content decides: without the uid and config.* annotations podvisor adds. */
export function comparablePod(pod: PodManifest): Record<string, unknown> {
  const { uid: _uid, ...metadata } = pod.metadata as PodManifest['metadata'] & { uid?: string };
  const annotations = Object.fromEntries(Object.entries(metadata.annotations ?? {}).filter(([key]) => !PODVISOR_ANNOTATIONS.has(key)));
  const { annotations: _annotations, ...rest } = metadata;
  return { ...pod, metadata: { ...rest, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) } };
}

/** The changes from the spec a pod runs to the one asked for, env values redacted unless `showEnvValues`. */
export function specChanges(running: PodManifest, wanted: PodManifest, options: { showEnvValues: boolean }): FieldChange[] {
  const changes = diffValues(comparablePod(running), comparablePod(wanted));
  return options.showEnvValues ? changes : changes.map(redactChange);
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `.key`, or `[key]` for a key that is not a plain identifier (a label such as app.kubernetes.io/name). */
function keyPath(path: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${key}]`;
}

/**
 * How a list's items are matched: by `name` when every item on both sides is an object with a
 * name unique on its side (containers, env, volumes), so a reorder or an insert is no change of
 * every later item; else by position. A list of plain values is one value.
 */
function itemKeys(before: readonly unknown[], after: readonly unknown[]): { key: (item: unknown, index: number) => string; byName: boolean } | undefined {
  const all = [...before, ...after];
  if (!all.every(isObject)) return undefined;
  const named = (list: readonly unknown[]) => {
    const names = list.map((item) => (item as Json).name);
    return names.every((name) => typeof name === 'string') && new Set(names).size === names.length;
  };
  if (named(before) && named(after)) return { key: (item) => String((item as Json).name), byName: true };
  return { key: (_item, index) => String(index), byName: false };
}

/** Every field path where `before` and `after` differ (JSON values; undefined: absent). */
export function diffValues(before: unknown, after: unknown, path = ''): FieldChange[] {
  if (isDeepStrictEqual(before, after)) return [];
  // Maps are compared key by key, into a side that is absent too: an added limit shows as its own field.
  if ((isObject(before) || before === undefined) && (isObject(after) || after === undefined)) {
    const keys = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])].sort();
    return keys.flatMap((key) => diffValues(before?.[key], after?.[key], keyPath(path, key)));
  }
  if ((Array.isArray(before) || before === undefined) && (Array.isArray(after) || after === undefined)) {
    const keys = itemKeys(before ?? [], after ?? []);
    if (keys) {
      const { key } = keys;
      const from = new Map((before ?? []).map((item, index) => [key(item, index), item]));
      const to = new Map((after ?? []).map((item, index) => [key(item, index), item]));
      const changes: FieldChange[] = [];
      // Order is part of a spec (containers start in it): items that only moved say so, once.
      const kept = (names: Iterable<string>, other: Map<string, unknown>) => [...names].filter((name) => other.has(name));
      const order = { from: kept(from.keys(), to), to: kept(to.keys(), from) };
      if (keys.byName && !isDeepStrictEqual(order.from, order.to)) changes.push(change(`${path}[*].name`, order.from, order.to));
      for (const name of new Set([...from.keys(), ...to.keys()])) {
        const itemPath = `${path}[${name}]`;
        const old = from.get(name);
        const next = to.get(name);
        // An item added or removed is one change (the whole item), not one per field of it.
        if (old === undefined || next === undefined) changes.push(change(itemPath, old, next));
        else changes.push(...diffValues(old, next, itemPath));
      }
      return changes;
    }
  }
  return [change(path, before, after)];
}

function change(path: string, from: unknown, to: unknown): FieldChange {
  return { path, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
}

/** A variable with its value left out (valueFrom stays: it names a source, holds no secret). */
function redactVariable(variable: unknown): unknown {
  return isObject(variable) && variable.value !== undefined ? { ...variable, value: REDACTED_ENV_VALUE } : variable;
}

/** A value with the env values of any container in it left out. */
function redactNested(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactNested);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, key === 'env' && Array.isArray(inner) ? inner.map(redactVariable) : redactNested(inner)]));
}

/** The change with env values left out, as `podvisor status` leaves them out; which fields changed still shows. */
function redactChange(one: FieldChange): FieldChange {
  const redact = (value: unknown): unknown => {
    if (/\.env\[[^\]]*\]\.value$/.test(one.path)) return REDACTED_ENV_VALUE;
    if (/\.env\[[^\]]*\]$/.test(one.path)) return redactVariable(value);
    if (/\.env$/.test(one.path) && Array.isArray(value)) return value.map(redactVariable);
    return redactNested(value);
  };
  return { path: one.path, ...('from' in one ? { from: redact(one.from) } : {}), ...('to' in one ? { to: redact(one.to) } : {}) };
}

/** The longest value printed in full on a line of text; JSON output always has all of it. */
const MAX_VALUE_CHARS = 80;

/** A value as a line of text shows it: `(none)` for absent, a plain string bare, anything else as JSON. */
export function formatValue(value: unknown, present = value !== undefined): string {
  if (!present) return '(none)';
  // A string that could be read as something else (empty, padded, a number, JSON) is quoted.
  const plain = typeof value === 'string' && value !== '' && value.trim() === value && !value.includes(' -> ') &&
    !/^(true|false|null|\(none\)|-?\d[\d.e+-]*|[[{"].*)$/.test(value);
  const text = plain ? value : JSON.stringify(value) ?? String(value);
  const shown = text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 3)}...` : text;
  return escapeText(shown);
}

/** One change as a line: `path: old -> new`. */
export function formatChange(one: FieldChange): string {
  return `${escapeText(one.path)}: ${formatValue(one.from, 'from' in one)} -> ${formatValue(one.to, 'to' in one)}`;
}
