// `podvisor validate PATH...`: every error and warning of the given files (or of the manifest
// files in the given directories); exit 1 if any file has an error.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { manifestPolicyOf } from '../config/manifest-policy.js';
import { errorMessage } from '../errors.js';
import { readAgentConfigFile } from './args.js';
import { isManifestName } from '../manifest/directory-source.js';
import { defaultNodeName } from '../manifest/identity.js';
import { mergeFiles } from '../manifest/desired-state.js';
import { loadManifestFile, type FileResult } from '../manifest/load-file.js';
import { formatFinding } from '../manifest/validate.js';

/** Expands directories to their manifest files; files named directly are taken as they are. */
async function expand(paths: string[]): Promise<{ files: string[]; problems: string[] }> {
  const files: string[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const names = (await readdir(path)).filter(isManifestName).sort();
        files.push(...names.map((name) => join(path, name)));
      } else {
        files.push(path);
      }
    } catch (error) {
      problems.push(`${path}: ${errorMessage(error)}`);
    }
  }
  return { files, problems };
}

/**
 * Validates and prints; returns the exit status. With `config` (the agent's config file), its
 * node name and manifest policy apply, as the agent running with it applies them.
 */
export async function validateCommand(paths: string[], options: { nodeName?: string | undefined; config?: string | undefined }): Promise<number> {
  const config = options.config === undefined ? undefined : await readAgentConfigFile(options.config);
  const policy = config ? manifestPolicyOf(config) : undefined;
  const nodeName = options.nodeName ?? config?.nodeName ?? defaultNodeName();
  const { files, problems } = await expand(paths);
  for (const problem of problems) process.stdout.write(`${problem}\n`);
  let failed = problems.length > 0;
  let pods = 0;
  const results: FileResult[] = [];
  for (const file of files) {
    const result = await loadManifestFile(file, { nodeName, displayName: file, ownership: policy?.ownership, devicePolicy: policy?.devicePolicy });
    for (const finding of result.findings) process.stdout.write(`${formatFinding(finding)}\n`);
    failed ||= result.hasErrors;
    pods += result.pods.length;
    results.push(result);
  }
  // Pods of different files asking for one host port: the agent runs only the first.
  for (const conflict of mergeFiles(results, new Map()).state.conflicts) {
    if (!conflict.finding) continue;
    process.stdout.write(`${formatFinding(conflict.finding)}\n`);
    failed = true;
    pods -= 1;
  }
  process.stderr.write(`${files.length} file(s), ${pods} valid pod(s)${failed ? ', with errors' : ''}\n`);
  return failed ? 1 : 0;
}
