// Reading an image archive: its sha256 (streamed, never the whole file in memory, with progress
// for archives of gigabytes) and `podman load` of it through the one PodmanCli.
//
// Compression: podman reads plain and gzip-compressed docker-archive and oci-archive files itself.
// For zstd, podman 4.3 (Debian 12) reads a zstd docker-archive but not a zstd oci-archive, whose
// layers it unpacks through a path that knows gzip, bzip2 and xz only (seen here: "Error:
// payload does not match any of the supported image formats"; the e2e test loads both). So a
// .tar.zst is decompressed by the `zstd` binary, streamed into `podman load` on its standard
// input: Node 20's zlib has no zstd, and the npm packages that do are either native addons (which
// the single-file bundle cannot carry) or WebAssembly builds of a few hundred KB the agent would
// hold in memory for a rare file. Debian's `zstd` package is ~1 MB and already on most systems
// (podman's own dependency libzstd is its library); without it, such an archive fails naming it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PodvisorError, errorMessage } from '../errors.js';
import type { ArchiveCompression } from './archive-files.js';
import type { PodmanCli } from './podman-cli.js';

/** Reads a file through sha256; `onProgress` is told of the bytes read so far as it goes. */
export async function hashFile(path: string, options: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {}): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  // 1 MiB reads: few turns of the loop for a large file, and a bounded buffer.
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024, signal: options.signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    options.onProgress?.(bytes);
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

/** An archive that could not be loaded for the decompressor's reason (its words; the file kept beside). */
export class ArchiveLoadError extends PodvisorError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('E_PODMAN', message, options);
    this.name = 'ArchiveLoadError';
    this.file = file;
  }
}

export interface LoadOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  /** The zstd binary (PODVISOR_ZSTD overrides). */
  zstd?: string;
}

/** Runs `podman load` of an archive; returns what podman printed on standard output. */
export async function loadArchive(cli: PodmanCli, path: string, compression: ArchiveCompression, options: LoadOptions): Promise<string> {
  if (compression !== 'zstd') {
    const { stdout } = await cli.run(['load', '--input', path], { signal: options.signal, timeoutMs: options.timeoutMs });
    return stdout;
  }
  const bin = options.zstd ?? process.env.PODVISOR_ZSTD ?? 'zstd';
  // zstd's end is watched for its own words; podman's failure wins when both fail (a truncated
  // stream makes both complain, and podman's line names the format).
  const decompressor = spawn(bin, ['--decompress', '--stdout', '--quiet', '--', path], { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
  let zstdError = '';
  decompressor.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (zstdError.length < 4096) zstdError += text;
  });
  // Its exit and the end of its stderr, not 'close': execa leaves the piped stdout open (not ended)
  // once podman is done with it, so 'close' would never come.
  const stderrEnded = new Promise<void>((resolve) => decompressor.stderr.once('close', () => resolve()));
  const zstdDone = new Promise<string | undefined>((resolve) => {
    decompressor.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ENOENT' ? `${bin} not found: install zstd to load .tar.zst archives` : errorMessage(error)));
    decompressor.once('exit', (code, signal) => {
      // zstd's own lines begin with "zstd: " and name the file.
      void stderrEnded.then(() => resolve(code === 0 ? undefined : zstdError.trim().replace(/\s*\n\s*/g, '; ') || `zstd: exit ${code ?? signal}`));
    });
  });
  try {
    const { stdout } = await cli.run(['load'], { signal: options.signal, timeoutMs: options.timeoutMs, input: decompressor.stdout });
    decompressor.stdout.destroy();
    const problem = await zstdDone;
    if (problem) throw new ArchiveLoadError(path, problem);
    return stdout;
  } catch (error) {
    // podman ended first (a failure, a timeout, a cancel): zstd has nowhere left to write.
    decompressor.kill('SIGKILL');
    decompressor.stdout.destroy();
    const problem = await zstdDone;
    // zstd's own failure (a file that is no zstd, cut short) is the cause; the kill or broken pipe
    // that follow podman's end are not.
    if (problem && !/SIGKILL|broken pipe|write error/i.test(problem)) throw new ArchiveLoadError(path, problem, { cause: error });
    throw error;
  }
}
