// Reads YAML text (manifests, the config file, kubeconfigs) into documents that remember where
// each of their fields stands, so every finding can name its line and column. JSON files go
// through the same parser (JSON is YAML 1.2), which gives them positions too.
//
// Parsing is bounded: files come from careless or hostile hands, and the yaml library's cost
// grows much faster than the text (a 1 MiB flow list of 500,000 items took 3.5 s and 585 MB
// here; 25,000 keys with its own duplicate-key check 3.5 s; an alias bomb expands without end).
// A cheap pass of the lexer first counts documents, nodes and nesting and refuses a text over
// any limit before anything is built; aliases are bounded when values are made. Whatever the
// library throws becomes a syntax error of the document: this function never throws.
import { CST, isMap, isScalar, isSeq, Lexer, LineCounter, parseAllDocuments, Scalar, visit, type Document, type DocumentOptions, type Node, type Pair, type ParseOptions, type SchemaOptions, type ScalarTag, type YAMLMap } from 'yaml';
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

/**
 * What one text may hold. Real Pod manifests are far inside these (the largest of the public
 * corpus in test/fixtures/corpus, kubeadm's kube-apiserver, has 217 nodes; a file of 90 such pods
 * fits); at these limits a text costs under a second and 100 MB here, run with the agent's own
 * Node flags (bench/hostile-files.mjs).
 */
export interface YamlLimits {
  /** Documents in one text. */
  maxDocuments: number;
  /** Scalars, collections and aliases in one text, over all its documents. */
  maxNodes: number;
  /** Nesting of collections. */
  maxDepth: number;
  /** Nodes an alias may expand to, over one document (the yaml library's maxAliasCount). */
  maxAliasCount: number;
}

export const YAML_LIMITS: Readonly<YamlLimits> = { maxDocuments: 1000, maxNodes: 20_000, maxDepth: 64, maxAliasCount: 100 };

/** Token types that make a node, as the lexer names them. */
const NODE_TOKENS = new Set<string>(['scalar', 'single-quoted-scalar', 'double-quoted-scalar', 'block-scalar-header', 'alias', 'flow-map-start', 'flow-seq-start', 'seq-item-ind', 'explicit-key-ind']);
/** The lexer's own markers, not part of the text. */
const CONTROL_TOKENS = new Set<string>([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/**
 * How plain scalars are read. `yaml-1.2` is the yaml library's default (podvisor's own config
 * file). `kubelet` reads as the kubelet does (sigs.k8s.io/yaml on a go-yaml v2 fork, YAML 1.1):
 * `0644` is the octal 420 and so is `0o644` (Go's ParseInt), `yes`/`on` are booleans, merge keys
 * apply, timestamps and sexagesimals stay strings, only `%YAML 1.1` is accepted, a byte-order
 * mark may start any line, and control characters anywhere refuse the file.
 */
export type YamlDialect = 'yaml-1.2' | 'kubelet';

/** Go's strconv.ParseInt(s, 0, 64), which go-yaml v2 tries first, reads `0o644` as octal too. */
const GO_OCTAL: ScalarTag = {
  identify: (value) => Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (text) => {
    const sign = text.startsWith('-') ? -1 : 1;
    return sign * parseInt(text.replace(/^[-+]?0o/, '').replace(/_/g, ''), 8);
  },
};

/** Tags of the YAML 1.1 schema go-yaml v2 does not resolve when decoding into JSON-like values. */
const NOT_IN_GO_YAML = new Set(['tag:yaml.org,2002:timestamp', 'tag:yaml.org,2002:binary', 'tag:yaml.org,2002:omap', 'tag:yaml.org,2002:pairs', 'tag:yaml.org,2002:set']);

const KUBELET_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  customTags: (tags) => [GO_OCTAL, ...tags.filter((tag) => typeof tag === 'object' && !NOT_IN_GO_YAML.has(tag.tag) && (tag as ScalarTag).format !== 'TIME')],
};

/**
 * What libyaml (and so go-yaml, the kubelet's parser) accepts in a stream: tab, line breaks, the
 * printable ASCII range, NEL and the rest of Unicode but for surrogates, U+FFFE and U+FFFF.
 */
const NOT_PRINTABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/;

/** Parses every YAML document in a text; never throws (a refusal is a document with a syntax error). */
export function parseManifestText(text: string, limits: Readonly<YamlLimits> = YAML_LIMITS, dialect: YamlDialect = 'yaml-1.2'): ParsedDocument[] {
  const lineCounter = new LineCounter();
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  try {
    if (dialect === 'kubelet') {
      const control = NOT_PRINTABLE.exec(text);
      if (control) {
        const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
        return [failed(0, `control character U+${code} is not allowed in YAML (the kubelet's parser refuses the file); write it as an escape in a double-quoted string`, positionOf(text, control.index))];
      }
      // go-yaml skips a byte-order mark that starts a line (files joined with cat keep theirs).
      text = text.replace(/(^|\n)\ufeff/g, '$1');
    }
    const refusal = checkLimits(text, limits);
    if (refusal) {
      // The line counter is fed by parsing; count lines for the refusal's position by hand.
      return [failed(0, refusal.message, positionOf(text, refusal.offset))];
    }
    // logLevel error: the library's warnings (a collection as a key...) would go to the process's
    // stderr, carrying the file's text; they are this document's findings instead.
    const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false, strict: false, logLevel: 'error', ...(dialect === 'kubelet' ? KUBELET_OPTIONS : {}) });
    const list = Array.isArray(documents) ? documents : [];
    return list
      .map((document, index) => toParsed(document, index, at, limits, dialect))
      .filter((parsed) => (parsed.value !== undefined && parsed.value !== null) || parsed.syntaxErrors.length > 0);
  } catch (error) {
    // The library's own failures (a stack overflow, an internal error) are this text's problem.
    return [failed(0, `cannot parse: ${error instanceof Error ? error.message : String(error)}`, { line: 1, column: 1 })];
  }
}

/** A document that stands for a refusal of the whole text. */
function failed(index: number, message: string, position: Position): ParsedDocument {
  return { index, value: undefined, syntaxErrors: [{ message, position }], syntaxWarnings: [], locate: () => position };
}

/** Line and column (1-based) of an offset, without a parse. */
function positionOf(text: string, offset: number): Position {
  let line = 1;
  let start = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) {
    line++;
    start = index + 1;
  }
  return { line, column: offset - start + 1 };
}

/** One pass of the lexer: the first limit the text breaks, with where, or undefined. */
function checkLimits(text: string, limits: Readonly<YamlLimits>): { message: string; offset: number } | undefined {
  let offset = 0;
  let documents = 1;
  let content = false;
  let nodes = 0;
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'doc-start') {
      // `---` at the very start opens the first document rather than a second one.
      if (content && ++documents > limits.maxDocuments) return { message: `more than ${limits.maxDocuments} documents in one file (the limit)`, offset };
      content = true;
    } else if (type !== null && NODE_TOKENS.has(type)) {
      content = true;
      if (++nodes > limits.maxNodes) return { message: `more than ${limits.maxNodes} YAML nodes in one file (the limit)`, offset };
      if ((type === 'flow-map-start' || type === 'flow-seq-start') && ++depth > limits.maxDepth) {
        return { message: `collections nested more than ${limits.maxDepth} deep (the limit)`, offset };
      }
    } else if (type === 'flow-map-end' || type === 'flow-seq-end') {
      depth = Math.max(0, depth - 1);
    }
    if (!CONTROL_TOKENS.has(token)) offset += token.length;
  }
  return undefined;
}

function toParsed(document: Document.Parsed, index: number, at: (offset: number) => Position, limits: Readonly<YamlLimits>, dialect: YamlDialect): ParsedDocument {
  const syntaxErrors: ParsedDocument['syntaxErrors'] = [];
  const syntaxWarnings: ParsedDocument['syntaxWarnings'] = [];
  const start = document.contents?.range?.[0] ?? 0;
  const directive = document.directives?.yaml;
  if (dialect === 'kubelet' && directive?.explicit && directive.version !== '1.1') {
    // go-yaml's parser: "found incompatible YAML document" for any version but 1.1.
    syntaxErrors.push({ message: `%YAML ${directive.version}: the kubelet's YAML parser reads only YAML 1.1 documents (use %YAML 1.1 or no directive)`, position: at(document.range[0]) });
  }
  for (const error of document.errors) {
    const entry = { message: error.message.split('\n')[0] ?? error.message, position: at(error.pos[0]) };
    // Go's YAML parser (what the kubelet reads manifests with) accepts \' in double quotes.
    if (error.code === 'BAD_DQ_ESCAPE' && error.message.includes("\\'")) syntaxWarnings.push(entry);
    else syntaxErrors.push(entry);
  }
  for (const warning of document.warnings) {
    syntaxWarnings.push({ message: warning.message.split('\n')[0] ?? warning.message, position: at(warning.pos[0]) });
  }
  if (syntaxErrors.length === 0) {
    const problem = structureProblem(document.contents, limits);
    if (problem) syntaxErrors.push({ message: problem.message, position: at(problem.offset ?? start) });
  }
  if (syntaxErrors.length === 0 && syntaxWarnings.length > 0) unescapeSingleQuotes(document);
  let value: unknown;
  if (syntaxErrors.length === 0) {
    try {
      value = document.toJS({ maxAliasCount: limits.maxAliasCount });
    } catch (error) {
      // An alias bomb, or an alias to an anchor that does not exist.
      const message = error instanceof Error ? error.message : String(error);
      const reason = /alias count/i.test(message) ? `aliases expand to more than the limit (maxAliasCount ${limits.maxAliasCount})` : message;
      syntaxErrors.push({ message: reason, position: at(start) });
    }
  }
  return {
    index,
    value,
    syntaxErrors,
    syntaxWarnings,
    locate: (path) => at(offsetOf(document.contents, path) ?? start),
  };
}

/**
 * A duplicate key (Go's YAML parser refuses them, as the yaml library's uniqueKeys does, but its
 * check costs the square of a mapping's size) or block nesting over the depth limit; walked
 * without recursion so depth cannot overflow the stack.
 */
function structureProblem(root: unknown, limits: Readonly<YamlLimits>): { message: string; offset: number | undefined } | undefined {
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth >= limits.maxDepth) return { message: `collections nested more than ${limits.maxDepth} deep (the limit)`, offset: (node as Node).range?.[0] };
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        // JSON, which the kubelet turns every manifest into, has only string keys.
        if (isMap(pair.key) || isSeq(pair.key)) return { message: 'a mapping key must be a scalar, not a collection', offset: (pair.key as Node).range?.[0] };
        if (isScalar(pair.key)) {
          const id = `${typeof pair.key.value}:${String(pair.key.value)}`;
          if (seen.has(id)) return { message: 'Map keys must be unique', offset: pair.key.range?.[0] };
          seen.add(id);
        }
        stack.push({ node: pair.value, depth: depth + 1 });
      }
    } else {
      for (const item of node.items) stack.push({ node: item, depth: depth + 1 });
    }
  }
  return undefined;
}

/** The offset of the key (or item) at `path`, or of the nearest parent that exists. */
function offsetOf(root: unknown, path: Path): number | undefined {
  let node = root as Node | null | undefined;
  let offset = node?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = keyIndex(node).get(String(segment));
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

/** Each mapping's pairs by key, built on first use: a document with many findings locates each in O(1). */
const keyIndexes = new WeakMap<object, Map<string, Pair>>();
function keyIndex(map: YAMLMap): Map<string, Pair> {
  let index = keyIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      const id = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (id !== undefined && !index.has(id)) index.set(id, pair as Pair);
    }
    keyIndexes.set(map, index);
  }
  return index;
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
