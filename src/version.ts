// podvisor's own version, from package.json: what `podvisor version`, the API and the node object report.
import { readFileSync } from 'node:fs';

/** podvisor's version, read from the package it is installed from. */
export function podvisorVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}
