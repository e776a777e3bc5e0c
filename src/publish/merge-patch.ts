// JSON merge patches (RFC 7386) from one state to another: what a PATCH with
// `application/merge-patch+json` needs to turn what the API server holds into what podvisor
// wants. Keys gone from the new state become null (removed); lists are replaced whole, which
// suits status lists (conditions, container statuses) that podvisor always sends complete.
import { canonicalJson } from '../canonical-json.js';

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The merge patch that turns `from` into `to`, or undefined when they are equal. */
export function mergePatch(from: unknown, to: unknown): unknown {
  if (isObject(from) && isObject(to)) {
    const patch: JsonObject = {};
    for (const [key, value] of Object.entries(from)) {
      if (value !== undefined && to[key] === undefined) patch[key] = null;
    }
    for (const [key, value] of Object.entries(to)) {
      if (value === undefined) continue;
      const before = from[key];
      if (before === undefined) {
        patch[key] = value;
        continue;
      }
      const change = mergePatch(before, value);
      if (change !== undefined) patch[key] = change;
    }
    return Object.keys(patch).length > 0 ? patch : undefined;
  }
  return canonicalJson(from) === canonicalJson(to) ? undefined : to;
}
