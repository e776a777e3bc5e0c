// The `policy:` settings as the manifest reader takes them: who may own manifests, where
// symbolic links may lead (two settings, each on its own), and what a pod may ask for. The agent
// and `podvisor validate --config` both build theirs here, so the two judge a file alike.
import { resolve } from 'node:path';
import type { DevicePolicy } from '../manifest/device-policy.js';
import { trustedUidsFor, type OwnershipOptions } from '../manifest/file-ownership.js';
import type { AgentConfig } from './agent-config.js';

/** The settings that make up the policy: a reload that changes any judges every file again. */
export const POLICY_SETTINGS: ReadonlySet<keyof AgentConfig> = new Set([
  'policyCheckOwnership', 'policyCheckSymlinks', 'policySymlinkRoots', 'policyPrivileged', 'policyHostNetwork', 'policyHostPid', 'policyHostIpc',
  'policyHostPathPrefixes', 'policyCapabilities', 'policyRegistries', 'policyRequireDigest',
]);

export interface ManifestPolicy {
  /**
   * The checks of a file before it is read; undefined when both policy.check-ownership and
   * policy.check-symlinks are false. Owners are checked when its `trustedUids` is set.
   */
  ownership: OwnershipOptions | undefined;
  devicePolicy: DevicePolicy;
}

type PolicyConfig = Pick<AgentConfig, 'manifestDir' | 'policyCheckOwnership' | 'policyCheckSymlinks' | 'policySymlinkRoots' | 'policyPrivileged' | 'policyHostNetwork' | 'policyHostPid' | 'policyHostIpc' | 'policyHostPathPrefixes' | 'policyCapabilities' | 'policyRegistries' | 'policyRequireDigest'>;

/**
 * The policy of a configuration, for a process running as `euid` (root and that user may own
 * manifests). Links lead only within the manifest directory unless policy.symlink-roots says more,
 * whether or not owners are checked: turning one rule off for a device leaves the other.
 */
export function manifestPolicyOf(config: PolicyConfig, euid: number | undefined = process.geteuid?.()): ManifestPolicy {
  const trustedUids = config.policyCheckOwnership ? trustedUidsFor(euid) : undefined;
  const symlinkRoots = config.policyCheckSymlinks ? (config.policySymlinkRoots ?? [resolve(config.manifestDir)]) : undefined;
  return {
    ownership: trustedUids === undefined && symlinkRoots === undefined ? undefined : { trustedUids, symlinkRoots },
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

/** True when the policy checks who owns manifests (policy.check-ownership, the default). */
export function ownershipChecked(policy: ManifestPolicy): boolean {
  return policy.ownership?.trustedUids !== undefined;
}
