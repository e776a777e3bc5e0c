// Reads a manifest file's text into documents that remember where each of their fields stands,
// so every finding can name its line and column. JSON files go through the same YAML parser
// (JSON is YAML 1.2), which gives them positions too.
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, Scalar, visit, type Document, type Node } from 'yaml';
import type { Path } from './field-policy.js';

export interface Position {
  line: number;
  column: number;
}

export interface ParsedDocument {
  /** 0-based index of the document in its file. */
  index: number;
  /** The plain value (undefined for an empty document). */
  value: unknown;
  /** Syntax errors in this document; a document with any is not used. */
  syntaxErrors: { message: string; position: Position }[];
  /** Syntax oddities a Go YAML parser (the kubelet's) accepts, reported as warnings. */
  syntaxWarnings: { message: string; position: Position }[];
  /** Where a field stands: the key's position, or the nearest existing parent's. */
  locate(path: Path): Position;
}

/** Parses every YAML document in a file's text. */
export function parseManifestText(text: string): ParsedDocument[] {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: false });
  const list = Array.isArray(documents) ? documents : [];
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  return list
    .map((document, index) => toParsed(document, index, at))
    .filter((parsed) => parsed.value !== undefined && parsed.value !== null || parsed.syntaxErrors.length > 0);
}

function toParsed(document: Document.Parsed, index: number, at: (offset: number) => Position): ParsedDocument {
  const syntaxErrors: ParsedDocument['syntaxErrors'] = [];
  const syntaxWarnings: ParsedDocument['syntaxWarnings'] = [];
  for (const error of document.errors) {
    const entry = { message: error.message.split('\n')[0] ?? error.message, position: at(error.pos[0]) };
    // Go's YAML parser (what the kubelet reads manifests with) accepts \' in double quotes.
    if (error.code === 'BAD_DQ_ESCAPE' && error.message.includes("\\'")) syntaxWarnings.push(entry);
    else syntaxErrors.push(entry);
  }
  for (const warning of document.warnings) {
    syntaxWarnings.push({ message: warning.message.split('\n')[0] ?? warning.message, position: at(warning.pos[0]) });
  }
  if (syntaxErrors.length === 0 && syntaxWarnings.length > 0) unescapeSingleQuotes(document);
  const value: unknown = syntaxErrors.length > 0 ? undefined : document.toJS({ maxAliasCount: 100 });
  const start = document.contents?.range?.[0] ?? 0;
  return {
    index,
    value,
    syntaxErrors,
    syntaxWarnings,
    locate: (path) => at(offsetOf(document.contents, path) ?? start),
  };
}

/** The offset of the key (or item) at `path`, or of the nearest parent that exists. */
function offsetOf(root: unknown, path: Path): number | undefined {
  let node = root as Node | null | undefined;
  let offset = node?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

/** Decodes \' in double-quoted scalars to ', as Go's YAML parser does (this one keeps the backslash). */
function unescapeSingleQuotes(document: Document.Parsed): void {
  visit(document, {
    Scalar(_key, node) {
      if (node.type === Scalar.QUOTE_DOUBLE && typeof node.value === 'string') {
        node.value = node.value.replace(/\\'/g, "'");
      }
    },
  });
}
