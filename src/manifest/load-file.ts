// Reads one manifest file into the pods it asks for and the findings about it. Never throws for
// bad content: a bad file is findings, so it cannot take anything else down.
import { isUtf8 } from 'node:buffer';
import { constants, open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { errorMessage } from '../errors.js';
import { escapeText } from '../log/escape.js';
import { HostPortTable, podHostPorts, type HostPortSite } from './host-ports.js';
import type { DevicePolicy } from './device-policy.js';
import { ownershipProblem, untrustedReason, type OwnershipOptions } from './file-ownership.js';
import { toDesiredPod, type DesiredPod } from './identity.js';
import { parseManifestText, YAML_LIMITS } from './parse.js';
import { isDns1123Subdomain } from './pod-schema.js';
import { formatPath, validateDocument, type Finding } from './validate.js';

/**
 * The largest manifest read. The API server refuses objects over 1.5 MiB and no real Pod comes
 * near it; with the parser's node limits this bounds what one file can cost (bench/hostile-files.mjs).
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Findings kept for one file; a file with thousands of problems says how many more it has. */
export const MAX_FINDINGS = 100;

export interface FileResult {
  path: string;
  /** What the file held when read, to tell a changed file from an unchanged one. */
  mtimeMs: number;
  size: number;
  pods: DesiredPod[];
  findings: Finding[];
  /** True when any document (or the file itself) has an error. */
  hasErrors: boolean;
  /**
   * The OS error that kept the file from being read (ENOENT, EACCES, EIO...). Only ENOENT and
   * ENOTDIR mean the file is gone; any other is taken as passing and the file is read again.
   */
  readError?: string | undefined;
  /** Where each pod of the file asks for a host port, to name it in a conflict between files. */
  hostPorts?: HostPortSite[];
  /**
   * Why the file's owner or mode made it refused, when ownership is checked: a chmod or chown
   * changes no content, so a reader compares this to tell that the verdict changed.
   */
  ownershipProblem?: string | undefined;
}

export interface LoadOptions {
  nodeName: string;
  /** How the file is named in findings (the full path by default). */
  displayName?: string;
  /** Refuse files (and directories, and link targets) not owned and writable by root alone; unchecked when absent. */
  ownership?: OwnershipOptions | undefined;
  /** What the device's owner forbids pods to ask for; everything allowed when absent. */
  devicePolicy?: DevicePolicy | undefined;
}

/** True for an error code that means the file is not there (as opposed to unreadable for now). */
export function isGone(code: string | undefined): boolean {
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Reads, parses and validates a manifest file. Never throws. Only a regular file is read, and
 * at most MAX_MANIFEST_BYTES of it: a FIFO, a device, a socket or a symlink to one (/dev/zero) is
 * refused without being opened, since opening one acts on it: a FIFO's writer waiting for a
 * reader is let through to a broken pipe, some devices act on open (a watchdog arms, a tape
 * rewinds). Should one be swapped in between the check and the open, O_NONBLOCK still keeps the
 * open from blocking and the second check from reading it.
 */
export async function loadManifestFile(path: string, options: LoadOptions): Promise<FileResult> {
  const display = escapeText(options.displayName ?? path);
  const fail = (message: string, mtimeMs = 0, size = 0, readError?: string, at = { line: 1, column: 1 }): FileResult => ({
    path, mtimeMs, size, pods: [], hasErrors: true, readError,
    findings: [{ file: display, line: at.line, column: at.column, field: '', severity: 'error', message }],
  });
  let handle;
  try {
    const before = await stat(path);
    if (!before.isFile()) return fail(`not a regular file (${fileKind(before)}): only regular files are read as manifests`, before.mtimeMs, 0);
    if (options.ownership) {
      // Before the open: a refused file is not read at all.
      const problem = await ownershipProblem(path, options.ownership);
      if (problem !== undefined) return { ...fail(`refused: ${problem}`, before.mtimeMs, before.size), ownershipProblem: problem };
    }
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    return fail(`cannot read: ${errorMessage(error)}`, 0, 0, errorCode(error));
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return fail(`not a regular file (${fileKind(info)}): only regular files are read as manifests`, info.mtimeMs, 0);
    // What was opened, once more: a chmod or chown between the check and the open is caught.
    const opened = options.ownership ? untrustedReason(path, 'file', info, options.ownership) : undefined;
    if (opened !== undefined) return { ...fail(`refused: ${opened}`, info.mtimeMs, info.size), ownershipProblem: opened };
    if (info.size > MAX_MANIFEST_BYTES) return fail(`file is ${info.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit for a manifest`, info.mtimeMs, info.size);
    // Read to the limit and one byte more: a file that grew since the stat is still caught.
    const buffer = Buffer.alloc(Math.min(info.size, MAX_MANIFEST_BYTES) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    if (length > MAX_MANIFEST_BYTES) return fail(`file is over the ${MAX_MANIFEST_BYTES}-byte limit for a manifest`, info.mtimeMs, info.size);
    const text = decodeManifest(buffer.subarray(0, length));
    if (typeof text !== 'string') return fail(text.message, info.mtimeMs, info.size, undefined, text);
    return { ...validateManifestText(text, path, options), mtimeMs: info.mtimeMs, size: info.size };
  } catch (error) {
    return fail(`cannot read: ${errorMessage(error)}`, 0, 0, errorCode(error));
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * The text of a manifest's bytes, decoded as go-yaml (the kubelet's parser) decodes a stream:
 * UTF-16 when it starts with a UTF-16 byte-order mark, UTF-8 otherwise, and bytes that are not
 * UTF-8 refuse the file (rather than become U+FFFD and a pod that differs from the file).
 */
export function decodeManifest(bytes: Buffer): string | { message: string; line: number; column: number } {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.toString('utf16le', 2);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.subarray(0, swapped.length - (swapped.length % 2)).swap16();
    return swapped.toString('utf16le');
  }
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const offset = firstInvalidUtf8(bytes);
  const lineStart = bytes.lastIndexOf(0x0a, offset - 1) + 1;
  let line = 1;
  for (let index = bytes.indexOf(0x0a); index !== -1 && index < offset; index = bytes.indexOf(0x0a, index + 1)) line++;
  const column = bytes.toString('utf8', lineStart, offset).length + 1;
  return { message: `invalid UTF-8 (byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')} at offset ${offset}): a manifest must be UTF-8 or UTF-16 text`, line, column };
}

/** The offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  let index = 0;
  while (index < bytes.length) {
    const byte = bytes[index]!;
    const length = byte < 0x80 ? 1 : byte >= 0xc2 && byte <= 0xdf ? 2 : byte >= 0xe0 && byte <= 0xef ? 3 : byte >= 0xf0 && byte <= 0xf4 ? 4 : 0;
    if (length === 0 || index + length > bytes.length) return index;
    if (!isUtf8(bytes.subarray(index, index + length))) return index;
    index += length;
  }
  return index;
}

/** The OS error code (ENOENT, EACCES...) of a failed file operation. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function fileKind(info: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isDirectory(): boolean; isSocket(): boolean }): string {
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isDirectory()) return 'a directory';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}

/** Validates a manifest's text as if read from `path`. */
export function validateManifestText(text: string, path: string, options: LoadOptions): Omit<FileResult, 'mtimeMs' | 'size'> {
  const display = escapeText(options.displayName ?? path);
  try {
    return capFindings(validateText(text, path, display, options));
  } catch (error) {
    // A defect in validation must not become a defect of the agent: it is this file's finding.
    const message = `cannot validate: ${errorMessage(error)}`;
    return { path, pods: [], hasErrors: true, findings: [{ file: display, line: 1, column: 1, field: '', severity: 'error', message }] };
  }
}

/** Keeps the first MAX_FINDINGS findings and says how many more there were. */
function capFindings(result: Omit<FileResult, 'mtimeMs' | 'size'>): Omit<FileResult, 'mtimeMs' | 'size'> {
  if (result.findings.length <= MAX_FINDINGS) return result;
  const kept = result.findings.slice(0, MAX_FINDINGS);
  const last = kept[kept.length - 1]!;
  const more = result.findings.length - MAX_FINDINGS;
  kept.push({ file: last.file, line: last.line, column: last.column, field: '', severity: result.hasErrors ? 'error' : 'warning', message: `and ${more} more finding(s) in this file` });
  return { ...result, findings: kept };
}

function validateText(text: string, path: string, display: string, options: LoadOptions): Omit<FileResult, 'mtimeMs' | 'size'> {
  const findings: Finding[] = [];
  const pods: DesiredPod[] = [];
  const keys = new Set<string>();
  const ports = new HostPortTable<HostPortSite>();
  const hostPorts: HostPortSite[] = [];
  const documents = parseManifestText(text, YAML_LIMITS, 'kubelet');
  if (documents.length === 0) {
    // An empty file is most often one caught mid-save: its pods keep their last good spec.
    findings.push({ file: display, line: 1, column: 1, field: '', severity: 'error', message: 'the file holds no Pod documents (delete the file to remove its pods)' });
  }
  for (const document of documents) {
    const result = validateDocument(display, document, options.devicePolicy);
    findings.push(...result.findings);
    if (!result.pod) continue;
    const where = document.locate(['metadata', 'name']);
    const desired = toDesiredPod(result.pod, path, options.nodeName);
    if (!isDns1123Subdomain(desired.name)) {
      findings.push({ file: display, line: where.line, column: where.column, field: 'metadata.name', severity: 'error', message: `the static pod name "${desired.name}" (name-node) must be a DNS-1123 subdomain of at most 253 characters` });
      continue;
    }
    if (keys.has(desired.key)) {
      findings.push({ file: display, line: where.line, column: where.column, field: 'metadata.name', severity: 'error', message: `pod ${desired.key} is already defined earlier in this file` });
      continue;
    }
    // Two pods of one file asking for one host port: the first in document order keeps it.
    const sites = podHostPorts(desired.pod).map(({ claim, list, index }) => {
      const field: (string | number)[] = ['spec', list, index, 'ports', claim.index, claim.declared ? 'hostPort' : 'containerPort'];
      const at = document.locate(field);
      return { claim, site: { podKey: desired.key, claim: claim.key, line: at.line, column: at.column, field: formatPath(field) } };
    });
    const clash = sites.find(({ claim }) => ports.holder(claim) !== undefined);
    const holder = clash && ports.holder(clash.claim);
    if (clash && holder) {
      findings.push({ file: display, line: clash.site.line, column: clash.site.column, field: clash.site.field, severity: 'error', message: `host port ${clash.claim.port}/${clash.claim.protocol} is already asked for by pod ${holder.podKey} (${display}:${holder.line}:${holder.column}); this pod is not run` });
      continue;
    }
    for (const { claim, site } of sites) ports.take([claim], site);
    hostPorts.push(...sites.map(({ site }) => site));
    keys.add(desired.key);
    pods.push(desired);
  }
  return { path, pods, findings, hasErrors: findings.some((finding) => finding.severity === 'error'), hostPorts };
}

/** The short name used for a manifest in log lines. */
export function manifestDisplayName(path: string): string {
  return basename(path);
}
