// The packages `npm run package` makes, built once per content of their inputs and shared by the
// packaging tests (each test file runs in its own process, several at once: a lock directory
// makes the first build and the others wait for it). The arm64 strip the build needs is
// installed from Debian's packages when missing: a test machine's set-up, as
// scripts/setup-host.sh installs podman.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ensureCommand } from './debian-root.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** What decides the packages' bytes: sources, packaging, the lock file, the docs they carry. */
const INPUTS = ['src', 'packaging', 'scripts/bundle.mjs', 'package.json', 'package-lock.json', 'README.md', 'LICENSE', 'manifests.d', 'install.sh'];

export interface Packages {
  version: string;
  /** The inputsHash() they were built from. */
  inputs: string;
  dir: string;
  deb: Record<'amd64' | 'arm64', string>;
  tarball: Record<'amd64' | 'arm64', string>;
}

/** A digest of the inputs' content: the packages built from one digest are the same. */
export async function inputsHash(): Promise<string> {
  const hash = createHash('sha256');
  const { stdout } = await execa('git', ['ls-files', '-co', '--exclude-standard', '--', ...INPUTS], { cwd: REPO });
  for (const file of stdout.split('\n').filter(Boolean).sort()) {
    const path = join(REPO, file);
    if (!existsSync(path)) continue;
    hash.update(file).update('\0').update(await readFile(path)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** The packages of the working tree's current content, built now or by an earlier test. */
export async function builtPackages(): Promise<Packages> {
  await ensureCommand('aarch64-linux-gnu-strip', 'binutils-aarch64-linux-gnu');
  const version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  const inputs = await inputsHash();
  const dir = join(REPO, '.cache', 'packages', inputs);
  const done = join(dir, 'done');
  const lock = `${dir}.lock`;
  await mkdir(dirname(dir), { recursive: true });
  const result: Packages = {
    version,
    inputs,
    dir,
    deb: { amd64: join(dir, `podvisor_${version}_amd64.deb`), arm64: join(dir, `podvisor_${version}_arm64.deb`) },
    tarball: { amd64: join(dir, `podvisor-${version}-linux-amd64.tar.gz`), arm64: join(dir, `podvisor-${version}-linux-arm64.tar.gz`) },
  };
  for (;;) {
    if (existsSync(done)) return result;
    try {
      await mkdir(lock);
    } catch {
      // Another test is building; a lock older than a build can take is a crashed run's.
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 15 * 60_000) await rm(lock, { recursive: true, force: true });
      await sleep(1000);
      continue;
    }
    try {
      if (existsSync(done)) return result;
      await rm(dir, { recursive: true, force: true });
      await execa('bash', ['packaging/build.sh'], { cwd: REPO, env: { OUT_DIR: dir }, timeout: 20 * 60_000, all: true }).catch((error: unknown) => {
        throw new Error(`npm run package failed:\n${(error as { all?: string }).all ?? String(error)}`, { cause: error });
      });
      await execa('touch', [done]);
      // Older builds' packages are 130 MB each: keep only this one.
      for (const name of await readdir(dirname(dir))) {
        const other = join(dirname(dir), name);
        if (other !== dir && !name.endsWith('.lock')) await rm(other, { recursive: true, force: true });
      }
      return result;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}
