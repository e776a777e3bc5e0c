// Update locks, as balena's: a file in the locks directory holds the replace of a running pod
// (`<namespace>_<name>`, the manifest's name or the static pod's) or of every pod (`all`), so a
// device mid-job (a print, a surgery, a batch) is not restarted under its user. Creating new pods
// and removing pods are never held: a lock only keeps a running pod on its running spec. The
// default directory is under /run, a tmpfs, so a lock never outlives a reboot.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DesiredPod } from '../manifest/identity.js';

export const DEFAULT_LOCKS_DIR = '/run/podvisor/locks';
/** The lock that holds every replace. */
export const ALL_LOCK = 'all';

/** The lock file names that hold `pod`'s replace: its own two names, and `all`. */
export function lockNames(pod: Pick<DesiredPod, 'name' | 'namespace'> & { pod: { spec: { nodeName?: string | null | undefined } } }): string[] {
  const node = pod.pod.spec.nodeName;
  const manifestName = node && pod.name.endsWith(`-${node}`) ? pod.name.slice(0, -node.length - 1) : pod.name;
  return [...new Set([`${pod.namespace}_${manifestName}`, `${pod.namespace}_${pod.name}`, ALL_LOCK])];
}

export interface UpdateLocksOptions {
  dir: string;
  logger: Logger;
  /** A lock came or went: the held replaces may go now. */
  onChange: () => void;
}

export class UpdateLocks {
  readonly dir: string;
  readonly #options: UpdateLocksOptions;
  #names = new Set<string>();
  #watcher: FSWatcher | undefined;

  constructor(options: UpdateLocksOptions) {
    this.dir = options.dir;
    this.#options = options;
  }

  /** Makes the directory (so a process can drop a lock in it), reads it, and watches it. */
  async start(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
    } catch (error) {
      this.#options.logger.warn(`cannot make the update locks directory ${this.dir}: ${errorMessage(error)}; no replace is held by a lock`);
      return;
    }
    await this.#rescan();
    this.#watcher = watch(this.dir, { depth: 0, ignoreInitial: true });
    const changed = () => void this.#rescan();
    this.#watcher.on('add', changed).on('unlink', changed).on('addDir', changed).on('unlinkDir', changed);
    this.#watcher.on('error', (error) => this.#options.logger.warn(`watching ${this.dir}: ${errorMessage(error)}`));
    await new Promise<void>((resolve) => this.#watcher?.once('ready', () => resolve()));
    // A lock made while the watcher was getting ready.
    await this.#rescan();
  }

  async stop(): Promise<void> {
    await this.#watcher?.close();
  }

  /** The lock that holds `pod`'s replace now, as a path, or undefined. */
  holding(pod: Parameters<typeof lockNames>[0]): string | undefined {
    const name = lockNames(pod).find((one) => this.#names.has(one));
    return name === undefined ? undefined : join(this.dir, name);
  }

  async #rescan(): Promise<void> {
    const names = new Set(await readdir(this.dir).catch(() => [] as string[]));
    const before = [...this.#names].sort().join('\n');
    this.#names = names;
    if ([...names].sort().join('\n') === before) return;
    this.#options.logger.info(names.size ? `update locks: ${[...names].sort().join(', ')}` : 'update locks: none', { event: 'UpdateLocks', locks: [...names].sort() });
    this.#options.onChange();
  }
}
