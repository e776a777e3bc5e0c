// Reading an image archive: its sha256 (streamed, never the whole file in memory, with progress
// for archives of gigabytes) and `podman load` of it through the one PodmanCli.
//
// Compression, as podman 4.3.1 (Debian 12) was seen to read each kind (test/e2e/image-archives):
// plain docker-archive and oci-archive, gzip oci-archive and zstd of both: podman reads the file
// itself. A gzip docker-archive (`docker save | gzip`, the commonest kind) it refuses ("loading
// tar component manifest.json: archive/tar: invalid tar header"), so a .tar.gz is decompressed
// here, streaming through Node's zlib into `podman load` on its standard input (podman copies it
// to a file of its own, as it would the archive). zstd needs nothing of podvisor: Node 20's zlib
// has none, and no `zstd` binary or npm package is needed while podman reads it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { PodvisorError } from '../errors.js';
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

export interface LoadOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
}

/** A .tar.gz whose gzip stream is broken: zlib's words. */
export class ArchiveDecompressError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_PODMAN', message, options);
    this.name = 'ArchiveDecompressError';
  }
}

/** Runs `podman load` of an archive; returns what podman printed on standard output. */
export async function loadArchive(cli: PodmanCli, path: string, compression: ArchiveCompression, options: LoadOptions): Promise<string> {
  if (compression !== 'gzip') {
    const { stdout } = await cli.run(['load', '--input', path], { signal: options.signal, timeoutMs: options.timeoutMs });
    return stdout;
  }
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
  const gunzip = createGunzip();
  let broken: Error | undefined;
  const fail = (error: Error) => {
    broken ??= error;
  };
  file.once('error', fail);
  gunzip.once('error', fail);
  try {
    const { stdout } = await cli.run(['load'], { signal: options.signal, timeoutMs: options.timeoutMs, input: file.pipe(gunzip) });
    if (broken) throw broken;
    return stdout;
  } catch (error) {
    // A broken gzip stream is the cause; podman's complaint about the cut-short tar follows from it.
    if (broken && !options.signal?.aborted) throw new ArchiveDecompressError(`gzip: ${broken.message}`, { cause: error });
    throw error;
  } finally {
    // podman may stop reading early (a failure): nothing is left open behind it.
    file.destroy();
    gunzip.destroy();
  }
}
