// A JSON file written atomically (temporary file, fsync, rename), so a crash or power loss
// mid-write leaves the previous version, never half a file.
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { errorMessage, PodvisorError } from '../errors.js';

/** Writes `value` as JSON to `path`, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = join(dirname(path), `.${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new PodvisorError('E_CONFIG', `cannot write ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

/** Reads a JSON file; undefined when it does not exist. A corrupt file is an error. */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PodvisorError('E_CONFIG', `${path} is not valid JSON: ${errorMessage(error)}`, { cause: error });
  }
}
