// Reads one manifest file into the pods it asks for and the findings about it. Never throws for
// bad content: a bad file is findings, so it cannot take anything else down.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { errorMessage } from '../errors.js';
import { toDesiredPod, type DesiredPod } from './identity.js';
import { parseManifestText } from './parse.js';
import { isDns1123Subdomain } from './pod-schema.js';
import { validateDocument, type Finding } from './validate.js';

export const MAX_MANIFEST_BYTES = 10 * 1024 * 1024;

export interface FileResult {
  path: string;
  /** What the file held when read, to tell a changed file from an unchanged one. */
  mtimeMs: number;
  size: number;
  pods: DesiredPod[];
  findings: Finding[];
  /** True when any document (or the file itself) has an error. */
  hasErrors: boolean;
}

export interface LoadOptions {
  nodeName: string;
  /** How the file is named in findings (the full path by default). */
  displayName?: string;
}

/** Reads, parses and validates a manifest file. */
export async function loadManifestFile(path: string, options: LoadOptions): Promise<FileResult> {
  const display = options.displayName ?? path;
  const fail = (message: string, mtimeMs = 0, size = 0): FileResult => ({
    path, mtimeMs, size, pods: [], hasErrors: true,
    findings: [{ file: display, line: 1, column: 1, field: '', severity: 'error', message }],
  });
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    return fail(`cannot read: ${errorMessage(error)}`);
  }
  if (info.size > MAX_MANIFEST_BYTES) return fail(`file is ${info.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit for a manifest`, info.mtimeMs, info.size);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return fail(`cannot read: ${errorMessage(error)}`, info.mtimeMs, info.size);
  }
  return { ...validateManifestText(text, path, options), mtimeMs: info.mtimeMs, size: info.size };
}

/** Validates a manifest's text as if read from `path`. */
export function validateManifestText(text: string, path: string, options: LoadOptions): Omit<FileResult, 'mtimeMs' | 'size'> {
  const display = options.displayName ?? path;
  const findings: Finding[] = [];
  const pods: DesiredPod[] = [];
  const documents = parseManifestText(text);
  if (documents.length === 0) {
    // An empty file is most often one caught mid-save: its pods keep their last good spec.
    findings.push({ file: display, line: 1, column: 1, field: '', severity: 'error', message: 'the file holds no Pod documents (delete the file to remove its pods)' });
  }
  for (const document of documents) {
    const result = validateDocument(display, document);
    findings.push(...result.findings);
    if (!result.pod) continue;
    const where = document.locate(['metadata', 'name']);
    const desired = toDesiredPod(result.pod, path, options.nodeName);
    if (!isDns1123Subdomain(desired.name)) {
      findings.push({ file: display, line: where.line, column: where.column, field: 'metadata.name', severity: 'error', message: `the static pod name "${desired.name}" (name-node) must be a DNS-1123 subdomain of at most 253 characters` });
      continue;
    }
    const twin = pods.find((pod) => pod.key === desired.key);
    if (twin) {
      findings.push({ file: display, line: where.line, column: where.column, field: 'metadata.name', severity: 'error', message: `pod ${desired.key} is already defined earlier in this file` });
      continue;
    }
    pods.push(desired);
  }
  return { path, pods, findings, hasErrors: findings.some((finding) => finding.severity === 'error') };
}

/** The short name used for a manifest in log lines. */
export function manifestDisplayName(path: string): string {
  return basename(path);
}
