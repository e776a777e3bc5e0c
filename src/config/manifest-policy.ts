// The `policy:` settings as the manifest reader takes them: who may own manifests (and where
// symbolic links may lead), and what a pod may ask for. The agent and `podvisor validate --config`
// both build theirs here, so the two judge a file alike.
import { resolve } from 'node:path';
import type { DevicePolicy } from '../manifest/device-policy.js';
import { trustedUidsFor, type OwnershipOptions } from '../manifest/file-ownership.js';
import type { AgentConfig } from './agent-config.js';

/** The settings that make up the policy: a reload that changes any judges every file again. */
export const POLICY_SETTINGS: ReadonlySet<keyof AgentConfig> = new Set([
  'policyCheckOwnership', 'policySymlinkRoots', 'policyPrivileged', 'policyHostNetwork', 'policyHostPid', 'policyHostIpc',
  'policyHostPathPrefixes', 'policyCapabilities', 'policyRegistries', 'policyRequireDigest',
]);

export interface ManifestPolicy {
  /** Undefined when policy.check-ownership is false. */
  ownership: OwnershipOptions | undefined;
  devicePolicy: DevicePolicy;
}

type PolicyConfig = Pick<AgentConfig, 'manifestDir' | 'policyCheckOwnership' | 'policySymlinkRoots' | 'policyPrivileged' | 'policyHostNetwork' | 'policyHostPid' | 'policyHostIpc' | 'policyHostPathPrefixes' | 'policyCapabilities' | 'policyRegistries' | 'policyRequireDigest'>;

/**
 * The policy of a configuration, for a process running as `euid` (root and that user may own
 * manifests). Links lead only within the manifest directory unless policy.symlink-roots says more.
 */
export function manifestPolicyOf(config: PolicyConfig, euid: number | undefined = process.geteuid?.()): ManifestPolicy {
  return {
    ownership: config.policyCheckOwnership
      ? { trustedUids: trustedUidsFor(euid), symlinkRoots: config.policySymlinkRoots ?? [resolve(config.manifestDir)] }
      : undefined,
    devicePolicy: {
      privileged: config.policyPrivileged,
      hostNetwork: config.policyHostNetwork,
      hostPID: config.policyHostPid,
      hostIPC: config.policyHostIpc,
      hostPathPrefixes: config.policyHostPathPrefixes,
      capabilities: config.policyCapabilities,
      registries: config.policyRegistries,
      requireDigest: config.policyRequireDigest,
    },
  };
}
