// Finds the fields of a document that the Pod schema does not know, by walking the document and
// the schema side by side. zod strips unknown keys when it parses; this names each of them, so a
// typo such as `imagePullPolcy` is a warning at its line rather than silently dropped.
import { z } from 'zod';
import type { Path } from './field-policy.js';

/** Unwraps optional/nullable/default wrappers down to the schema that holds the shape. */
function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodNullable || current instanceof z.ZodDefault) {
      current = current.unwrap() as z.ZodType;
    } else {
      return current;
    }
  }
}

export interface UnknownField {
  path: Path;
  /** A known field whose name differs only in case (`gRPC` for `grpc`), if there is one. */
  suggestion?: string;
}

/** Returns every key in `value` that `schema` has no place for. */
export function unknownFields(schema: z.ZodType, value: unknown, at: Path = []): UnknownField[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const shape = inner.shape as Record<string, z.ZodType>;
    return Object.entries(value).flatMap(([key, child]) => {
      // Own keys only: `constructor`, `toString` or `__proto__` are unknown fields like any other.
      const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
      if (field) return unknownFields(field, child, [...at, key]);
      const suggestion = Object.keys(shape).find((known) => known.toLowerCase() === key.toLowerCase());
      return [suggestion ? { path: [...at, key], suggestion } : { path: [...at, key] }];
    });
  }
  if (inner instanceof z.ZodArray && Array.isArray(value)) {
    return value.flatMap((item, index) => unknownFields(inner.element as z.ZodType, item, [...at, index]));
  }
  if (inner instanceof z.ZodRecord && typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, child]) => unknownFields(inner.valueType as z.ZodType, child, [...at, key]));
  }
  return [];
}
