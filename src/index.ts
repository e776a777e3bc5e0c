// podvisor's public entry for embedding: the pieces a program needs to validate manifests or
// run the agent itself.
export { startAgent, type Agent } from './agent.js';
export { parseAgentConfig, type AgentConfig } from './config/agent-config.js';
export { loadManifestFile, validateManifestText, type FileResult } from './manifest/load-file.js';
export { formatFinding, type Finding } from './manifest/validate.js';
export { PodvisorError, type ErrorCode } from './errors.js';
