// Notices when the agent's event loop was held: a timer that should fire every second and fires
// late says by how much. Everything the agent does (deciding a restart, answering /healthz,
// reading a file) waits behind a held loop, so a stall is worth a warning line of its own. One
// 1 s timer costs nothing measurable; a finer-grained histogram (perf_hooks'
// monitorEventLoopDelay) costs an idle agent a share of a core it cannot spare.
import { performance } from 'node:perf_hooks';

export interface LoopStall {
  /** How long the loop was held beyond the timer's period, in ms. */
  heldMs: number;
  /** When the held stretch ended (Date.now()). */
  endedAt: number;
}

export interface LoopStallWatchOptions {
  /** Told of each stall at least `thresholdMs` long. */
  onStall: (stall: LoopStall) => void;
  /** 1000 unless told. */
  periodMs?: number;
  /** 1000 unless told. */
  thresholdMs?: number;
}

/** Watches until the returned function is called; the timer never keeps the process alive. */
export function watchLoopStalls(options: LoopStallWatchOptions): { stop: () => void; longestMs: () => number } {
  const periodMs = options.periodMs ?? 1000;
  const thresholdMs = options.thresholdMs ?? 1000;
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const heldMs = now - last - periodMs;
    last = now;
    if (heldMs > longest) longest = heldMs;
    if (heldMs >= thresholdMs) options.onStall({ heldMs: Math.round(heldMs), endedAt: Date.now() });
  }, periodMs);
  timer.unref();
  return { stop: () => clearInterval(timer), longestMs: () => Math.round(longest) };
}
