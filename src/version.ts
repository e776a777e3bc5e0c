// podvisor's own version: what `podvisor version`, the API and the node object report.
import { readFileSync } from 'node:fs';

/** Written into the bundle when it is built (scripts/bundle.mjs): a package has no package.json beside it. */
declare const __PODVISOR_VERSION__: string | undefined;

/** podvisor's version: the bundle's own, or package.json's when run from the compiled sources. */
export function podvisorVersion(): string {
  if (typeof __PODVISOR_VERSION__ === 'string') return __PODVISOR_VERSION__;
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}
