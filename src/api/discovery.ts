// The discovery documents a Kubernetes client reads before anything else: which API versions
// and resources the server has (`/api`, `/api/v1`, `/apis`) and what it is (`/version`). They
// list only what podvisor serves, read-only: a client never learns of a verb it cannot use.
import { arch } from 'node:os';

/** The Kubernetes API version whose pod semantics podvisor follows. */
export const KUBE_MAJOR = '1';
export const KUBE_MINOR = '33';

const READ_VERBS = ['get', 'list', 'watch'];

export const API_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'v1',
  resources: [
    { name: 'events', singularName: 'event', namespaced: true, kind: 'Event', verbs: READ_VERBS, shortNames: ['ev'] },
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: READ_VERBS, shortNames: ['no'] },
    { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: READ_VERBS, shortNames: ['po'], categories: ['all'] },
    { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
  ],
};

/** `/api`: the core group's versions. */
export function apiVersions(serverAddress: string): unknown {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** `/apis`: no named groups. */
export const API_GROUPS = { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };

const GO_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

/** `/version`, as the API server answers it; gitVersion says it is podvisor. */
export function versionInfo(podvisorVersion: string): unknown {
  return {
    major: KUBE_MAJOR,
    minor: KUBE_MINOR,
    gitVersion: `v${KUBE_MAJOR}.${KUBE_MINOR}.0-podvisor.${podvisorVersion}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '',
    goVersion: `node${process.versions.node}`,
    compiler: 'podvisor',
    platform: `linux/${GO_ARCH[arch()] ?? arch()}`,
  };
}
