// `podvisor logs POD`: a container's output, as `kubectl logs` shows it. podman restarts a
// container in place, so its log file holds every run: only the current run's lines are shown
// (those after the previous run's exit), and --previous shows the run before it (from that run's
// start, as the status recorded it, to its exit).
import { PodmanCli } from '../runtime/podman-cli.js';
import type { ContainerStatus } from '../status/types.js';
import { findPods, notFound, readStatusForDisplay } from './read-status.js';

/** How much earlier than podman's start time a run's first line may be stamped. */
const START_MARGIN_MS = 250;

export interface LogsOptions {
  stateDir: string;
  namespace?: string | undefined;
  container?: string | undefined;
  follow?: boolean | undefined;
  tail?: number | undefined;
  previous?: boolean | undefined;
}

/** Prints the container's log through podman; returns the exit status. */
export async function logsCommand(name: string, options: LogsOptions): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`podvisor logs: ${message}\n`);
    return 1;
  };
  const file = await readStatusForDisplay(options.stateDir);
  const [pod, ...more] = findPods(file, name, options.namespace);
  if (!pod) return fail(notFound(name, options.namespace));
  if (more.length > 0) return fail(`"${name}" names pods in more than one namespace: give NAMESPACE/NAME`);
  const statuses: ContainerStatus[] = [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])];
  let containerName = options.container;
  if (containerName === undefined) {
    containerName = pod.status.containerStatuses?.[0]?.name;
    // kubectl's own notice when it picks for the user.
    if (statuses.length > 1) process.stderr.write(`Defaulted container "${containerName ?? ''}" out of: ${statuses.map((status) => status.name).join(', ')}\n`);
  }
  const status = statuses.find((candidate) => candidate.name === containerName);
  if (!status) return fail(`container ${containerName ?? '""'} is not valid for pod ${pod.metadata.name}`);
  const id = status.containerID?.replace(/^podman:\/\//, '');
  if (!id) return fail(`container "${status.name}" in pod "${pod.metadata.name}" has not been created yet`);

  const cli = new PodmanCli();
  let run: { startedAt: string; finishedAt: string; running: boolean };
  try {
    run = JSON.parse((await cli.run(['inspect', '--type', 'container', '--format', '{"startedAt":{{json .State.StartedAt}},"finishedAt":{{json .State.FinishedAt}},"running":{{.State.Running}}}', id])).stdout) as typeof run;
  } catch {
    return fail(`container "${status.name}" of pod "${pod.metadata.name}" is gone from podman (the agent will make it again)`);
  }
  // A run's first lines can be stamped a little before podman records its start, so the bound
  // between two runs is the earlier run's exit, which podman keeps while the next one runs.
  const previousExit = run.running && Date.parse(run.finishedAt) > 0 ? run.finishedAt : undefined;
  let range: string[];
  if (options.previous) {
    const previousStart = status.lastState.terminated?.startedAt;
    if (!previousStart || !previousExit) return fail(`previous terminated container "${status.name}" in pod "${pod.metadata.name}" not found`);
    range = ['--since', previousStart, '--until', previousExit];
  } else if (run.running) {
    range = previousExit ? ['--since', previousExit] : [];
  } else {
    // Its last run has ended: from a moment before podman's start of it (see above).
    range = ['--since', new Date(Date.parse(run.startedAt) - START_MARGIN_MS).toISOString()];
  }
  const args = ['logs', ...range, ...(options.follow && !options.previous ? ['--follow'] : []), ...(options.tail === undefined ? [] : ['--tail', String(options.tail)]), id];
  return await cli.passThrough(args);
}
