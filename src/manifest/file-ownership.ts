// Who may have written a manifest. Whoever can write the manifest directory, or a file in it, runs
// pods as root on the device (privileged, host paths, the host's network), so a file is refused
// unless it, and the directory it is read from, are owned by root (or by the agent's own user when
// it does not run as root) and writable by their owner alone: the rule sshd's StrictModes applies
// to authorized_keys. A symbolic link is followed only to a regular file under an allowed root,
// and that file and every directory above it must pass the same rule: else whoever owns any of
// them could swap the file that is read.
//
// The two rules are separate settings (policy.check-ownership, policy.check-symlinks): a device
// that must let another user write its manifests still keeps links from leading anywhere, and
// the link rule alone then judges only where a link leads, not who owns what it leads to.
//
// The checks only read metadata (stat, lstat, realpath); a refusal is a sentence saying what is
// wrong and the command that fixes it.
import type { Stats } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { errorMessage } from '../errors.js';
import { escapeText } from '../log/escape.js';

export interface OwnershipOptions {
  /**
   * The users that may own manifests and the directories above them: root, and the agent's own.
   * Undefined when owners and modes are not checked (policy.check-ownership: false).
   */
  trustedUids: ReadonlySet<number> | undefined;
  /**
   * Directories a symbolic link may lead into (absolute). A link to anywhere else is refused; an
   * empty list follows no link. Undefined when links may lead anywhere (policy.check-symlinks: false).
   */
  symlinkRoots: readonly string[] | undefined;
}

/** The users trusted by an agent running as `euid`: root, and itself. */
export function trustedUidsFor(euid: number | undefined): ReadonlySet<number> {
  return new Set(euid === undefined ? [0] : [0, euid]);
}

type Metadata = Pick<Stats, 'uid' | 'mode'>;

/** The mode's permission bits as `ls -l` people write them: 0644. */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Who `uids` are, for a message: "root", or "root or uid 1000". */
function trustedNames(uids: ReadonlySet<number>): string {
  return [...uids].sort((a, b) => a - b).map((uid) => (uid === 0 ? 'root' : `uid ${uid}`)).join(' or ');
}

/**
 * Why `info` (the metadata of `path`, a `what`: "file" or "directory") may not be trusted, with
 * its fix; undefined when it may, or when owners are not checked. A directory with the sticky bit
 * (/tmp) may be writable by others when `child` (the entry under it that matters) is trusted: then
 * no one else may rename or remove that entry.
 */
export function untrustedReason(path: string, what: 'file' | 'directory', info: Metadata, options: Pick<OwnershipOptions, 'trustedUids'>, child?: Metadata): string | undefined {
  const trusted = options.trustedUids;
  if (trusted === undefined) return undefined;
  const shown = escapeText(path);
  if (!trusted.has(info.uid)) {
    return `${what === 'file' ? '' : 'the directory '}${shown} is owned by uid ${info.uid}, not ${trustedNames(trusted)}: chown root ${shown}`;
  }
  const writable = info.mode & 0o022;
  if (writable === 0) return undefined;
  const sticky = (info.mode & 0o1000) !== 0;
  if (what === 'directory' && sticky && child && trusted.has(child.uid)) return undefined;
  const by = writable === 0o022 ? 'group and others' : writable === 0o020 ? 'group' : 'others';
  return `${what === 'file' ? '' : 'the directory '}${shown} is writable by ${by} (mode ${octalMode(info.mode)}): chmod go-w ${shown}`;
}

/** True when `path` is `root` or inside it (both absolute and resolved). */
export function isUnder(path: string, root: string): boolean {
  if (root === sep) return path.startsWith(sep);
  return path === root || path.startsWith(root + sep);
}

/**
 * Why the manifest at `path` may not be read, or undefined when it may: its directory, then the
 * file; for a symbolic link, where it leads, that file, and every directory above it. A path that
 * cannot be looked at (gone, a loop) is not refused here: reading it reports that.
 */
export async function ownershipProblem(path: string, options: OwnershipOptions): Promise<string | undefined> {
  const absolute = resolve(path);
  const dir = dirname(absolute);
  let link: Stats;
  let dirInfo: Stats;
  try {
    [dirInfo, link] = await Promise.all([stat(dir), lstat(absolute)]);
  } catch {
    return undefined;
  }
  const inDir = untrustedReason(dir, 'directory', dirInfo, options);
  if (inDir) return inDir;
  if (!link.isSymbolicLink()) return link.isFile() ? untrustedReason(absolute, 'file', link, options) : undefined;
  return await symlinkProblem(absolute, options);
}

/** Why the symbolic link at `path` may not be followed, or undefined. */
async function symlinkProblem(path: string, options: OwnershipOptions): Promise<string | undefined> {
  const shown = escapeText(path);
  let target: string;
  try {
    target = await realpath(path);
  } catch {
    return undefined;
  }
  const allowedRoots = options.symlinkRoots;
  if (allowedRoots !== undefined) {
    const roots = await Promise.all(allowedRoots.map((root) => realpath(root).catch(() => resolve(root))));
    if (!roots.some((root) => isUnder(target, root))) {
      const allowed = allowedRoots.length === 0 ? 'no symbolic link is followed (policy.symlink-roots is empty)' : `links are followed only into ${allowedRoots.map(escapeText).join(', ')} (policy.symlink-roots)`;
      return `${shown} is a symbolic link to ${escapeText(target)}: ${allowed}; copy the file here, or add its directory to policy.symlink-roots`;
    }
  }
  // Owners not checked: where the link leads was all there was to judge.
  if (options.trustedUids === undefined) return undefined;
  let info: Stats;
  try {
    info = await stat(target);
  } catch {
    return undefined;
  }
  // Not a regular file: the reader says so in its own words.
  if (!info.isFile()) return undefined;
  const file = untrustedReason(target, 'file', info, options);
  if (file) return `${shown} links to ${file}`;
  // Every directory above the target: whoever may write one of them may swap what is under it.
  let child: Stats = info;
  for (let dir = dirname(target); ; dir = dirname(dir)) {
    let dirInfo: Stats;
    try {
      dirInfo = await stat(dir);
    } catch (error) {
      return `${shown} links to ${escapeText(target)}, whose directory ${escapeText(dir)} cannot be looked at: ${errorMessage(error)}`;
    }
    const reason = untrustedReason(dir, 'directory', dirInfo, options, child);
    if (reason) return `${shown} links to ${escapeText(target)}, and ${reason}`;
    if (dirname(dir) === dir) return undefined;
    child = dirInfo;
  }
}
