// A view of podman that can only look: what `podvisor plan` lists pods through. Two walls, so
// that a plan can never act even by a slip: the view's type has `list` and nothing else (no
// create, kill, start or stop to call), and under it the podman client refuses, before starting
// podman, any command that is not one of the few listing and inspecting ones the listing uses.
import { PodvisorError } from '../errors.js';
import { PodmanCli, type PodmanCallOptions, type PodmanCliOptions, type PodmanResult } from './podman-cli.js';
import { PodmanRuntime } from './podman-runtime.js';
import type { PodRuntime } from './types.js';

/** What a reader of podman's pods may ask: one listing, the agent's own. */
export type RuntimeReader = Pick<PodRuntime, 'list'>;

/** The podman commands that change nothing, as their first words: the runtime's listing uses only these. */
export const READ_ONLY_COMMANDS: readonly (readonly string[])[] = [['pod', 'ps'], ['ps'], ['container', 'inspect']];

/** True when `args` start with one of READ_ONLY_COMMANDS. */
export function isReadOnlyCall(args: readonly string[]): boolean {
  return READ_ONLY_COMMANDS.some((words) => words.every((word, index) => args[index] === word));
}

/** A podman client that runs only READ_ONLY_COMMANDS; anything else is refused without running podman. */
export class ReadOnlyPodmanCli extends PodmanCli {
  override async run(args: readonly string[], options: PodmanCallOptions = {}): Promise<PodmanResult> {
    refuseWrites(args);
    return await super.run(args, options);
  }

  override async passThrough(args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<number> {
    refuseWrites(args);
    return await super.passThrough(args, options);
  }
}

function refuseWrites(args: readonly string[]): void {
  if (!isReadOnlyCall(args)) throw new PodvisorError('E_PODMAN', `refused: podman ${args.slice(0, 2).join(' ')} is not a read-only command, and this view of podman only reads`);
}

/** The agent's listing of `nodeName`'s pods through a client that cannot change anything. */
export function readOnlyRuntime(options: { nodeName: string; stateDir: string; cli?: PodmanCliOptions }): RuntimeReader {
  const runtime = new PodmanRuntime({ cli: new ReadOnlyPodmanCli(options.cli), nodeName: options.nodeName, stateDir: options.stateDir, hostIP: '127.0.0.1' });
  // No new addresses: a plan needs no pod IPs, so no inspect of new infra containers either.
  return { list: (signal) => runtime.list(signal, { newAddresses: false }) };
}
