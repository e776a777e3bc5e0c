// JSON with object keys sorted at every level and undefined members left out, so that equal
// content always gives the same text: what config hashes and content hashes are taken of.
import { compareText } from './order.js';

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, child]) => child !== undefined)
        .sort(([a], [b]) => compareText(a, b))
        .map(([key, child]) => [key, sortKeys(child)]),
    );
  }
  return value;
}

/** `value` as canonical JSON text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}
