// Which files of the images directory are image archives, and when one is complete enough to
// hash and load. Pure, so the rules are table-tested without a directory or a clock.
//
// An archive copied in slowly (scp over a thin link, a USB stick) is written for minutes; loading
// it half-written would fail and, worse, be remembered as a failure. So a file is taken only once
// it was renamed into place (the atomic way, recognised as the manifest directory does: its change
// time is past its modification time), or once its size and modification time have not moved for
// a settle period, measured on this agent's clock between two looks (not from the file's mtime,
// which a copy with preserved times or a skewed clock can put anywhere).
import type { Stats } from 'node:fs';
import { doneWriting } from '../manifest/directory-source.js';

/** How an archive is compressed, by its name (load-archive.ts says which podman reads itself). */
export type ArchiveCompression = 'none' | 'gzip' | 'zstd';

/** Names that are never archives: dotfiles (rsync's and curl's temporaries), editor and copy leftovers. */
const LEFTOVER = /(~|\.swp|\.tmp|\.part|\.partial|\.crdownload|\.bak|\.orig|\.dpkg-[a-z]+)$/;

const SUFFIXES: readonly [string, ArchiveCompression][] = [
  ['.tar', 'none'],
  ['.tar.gz', 'gzip'],
  ['.tgz', 'gzip'],
  ['.tar.zst', 'zstd'],
  ['.tar.zstd', 'zstd'],
];

/** The compression of an archive file by its name, or undefined for a name that is no archive. */
export function archiveCompression(name: string): ArchiveCompression | undefined {
  if (name.startsWith('.') || LEFTOVER.test(name)) return undefined;
  const lower = name.toLowerCase();
  return SUFFIXES.find(([suffix]) => lower.endsWith(suffix) && lower.length > suffix.length)?.[1];
}

/** What identifies a file's content without reading it; the change time moves with any write. */
export interface FileFacts {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

/** The facts of a stat. */
export function factsOf(info: Pick<Stats, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>): FileFacts {
  return { size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, ino: info.ino };
}

/** True when two looks saw the same content (same inode, size, modification and change time). */
export function sameFacts(a: FileFacts | undefined, b: FileFacts | undefined): boolean {
  return a !== undefined && b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/** An earlier look at a file: what it was and when (this agent's clock, ms). */
export interface Look {
  facts: FileFacts;
  at: number;
}

export type Readiness =
  /** Complete: hash and load it. */
  | { kind: 'ready' }
  /** Maybe still being written: look again after `inMs`. */
  | { kind: 'wait'; inMs: number }
  /** Empty and not moving: nothing to load until it changes (no pod waits for it). */
  | { kind: 'empty' };

/**
 * Whether a file seen now as `info` is complete, given the previous look at it (`previous`, or
 * undefined for a first look) and the settle period.
 */
export function readiness(info: Pick<Stats, 'isFile' | 'size' | 'ctimeMs' | 'mtimeMs' | 'ino'>, previous: Look | undefined, now: number, settleMs: number): Readiness {
  if (doneWriting(info)) return { kind: 'ready' };
  const facts = factsOf(info);
  const steady = previous !== undefined && sameFacts(previous.facts, facts);
  if (!steady) return { kind: 'wait', inMs: settleMs };
  const quietFor = now - previous.at;
  if (quietFor < settleMs) return { kind: 'wait', inMs: settleMs - quietFor };
  return facts.size === 0 ? { kind: 'empty' } : { kind: 'ready' };
}

/** The image names `podman load` printed ("Loaded image: a" or "Loaded image(s): a,b", one line per image on 4.x). */
export function loadedImages(stdout: string): string[] {
  const names: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^Loaded image(?:\(s\))?:\s*(.+)$/.exec(line.trim());
    if (!match?.[1]) continue;
    for (const name of match[1].split(',')) if (name.trim() !== '') names.push(name.trim());
  }
  return [...new Set(names)];
}
