// Helpers shared by tests that drive podvisor's own code in-process: a logger whose lines the
// test can read, what a command writes to stdout, and a poll with a deadline (never a fixed
// sleep as the assertion).
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import type { Logger } from '../../src/log/logger.js';

/** A logger that keeps its lines (`level: message`) for the test to read. */
export function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    objectMode: true,
    write(info: { level: string; message: string }, _encoding, done) {
      lines.push(`${info.level}: ${info.message}`);
      done();
    },
  });
  return { logger: winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] }), lines };
}

/** A wait `until(check, what, timeoutMs?)` that polls every `stepMs` and fails after the timeout. */
export function untilWithin(defaultTimeoutMs: number, stepMs = 5) {
  return async function until(check: () => boolean, what: string, timeoutMs = defaultTimeoutMs): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(stepMs);
    }
  };
}

/** What `run` writes to `stream` (and nothing reaches the real one), with the exit status it returns. */
async function writesTo(stream: NodeJS.WriteStream, run: () => Promise<number>): Promise<{ code: number; text: string }> {
  const chunks: string[] = [];
  const realWrite = stream.write;
  stream.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof stream.write;
  try {
    const code = await run();
    return { code, text: chunks.join('') };
  } finally {
    stream.write = realWrite;
  }
}

/** What a command prints on stdout, with its exit status. */
export const stdoutOf = (run: () => Promise<number>) => writesTo(process.stdout, run);

/** What a command prints on stderr, with its exit status. */
export const stderrOf = (run: () => Promise<number>) => writesTo(process.stderr, run);
