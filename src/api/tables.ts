// Server-side printing: the meta.k8s.io/v1 Table the API server returns when a client (kubectl
// get) asks for `as=Table`, with the columns the API server's own printers define for pods,
// events and nodes (priority 1 columns are the ones `-o wide` adds).
import type { MirrorPod, V1Event } from '../mirror/mirror-pod.js';
import type { ResourceName, StoredObject } from '../mirror/mirror-store.js';
import type { V1Node } from '../mirror/node-object.js';
import { humanDuration, printedStatus } from '../status/printers.js';

export interface ColumnDefinition {
  name: string;
  type: 'string' | 'integer';
  format: string;
  description: string;
  priority: number;
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableRow {
  cells: (string | number)[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion: string };
  columnDefinitions: ColumnDefinition[];
  rows: TableRow[];
}

const column = (name: string, description: string, priority = 0, format = '', type: ColumnDefinition['type'] = 'string'): ColumnDefinition => ({
  name,
  type,
  format,
  description,
  priority,
});

const NAME = column('Name', 'Name must be unique within a namespace. It is required when creating resources.', 0, 'name');
const AGE = column('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

const COLUMNS: Record<ResourceName, ColumnDefinition[]> = {
  pods: [
    NAME,
    column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    column('Status', 'The aggregate status of the containers in this pod.'),
    column('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    AGE,
    column('IP', 'IP address assigned to the pod', 1),
    column('Node', 'Name of the node assigned to the pod', 1),
    column('Nominated Node', 'Name of the node nominated by the scheduler', 1),
    column('Readiness Gates', 'Readiness gates of the pod', 1),
  ],
  events: [
    column('Last Seen', 'Time when last event from this series was observed.'),
    column('Type', 'Type of this event (Normal, Warning), new types could be added in the future.'),
    column('Reason', 'This should be a short, machine understandable string that gives the reason for this event being generated.'),
    column('Object', 'The object this Event is about.'),
    column('Subobject', 'The subobject this event is about (for example a container in a pod).', 1),
    column('Source', 'The component reporting this event.', 1),
    column('Message', 'A human-readable description of the status of this operation.'),
    column('First Seen', 'The time at which the event was first recorded.', 1),
    column('Count', 'The number of times this event has occurred.', 1),
    column('Name', 'Name of the event.', 1, 'name'),
  ],
  nodes: [
    NAME,
    column('Status', 'The status of the node'),
    column('Roles', 'The roles of the node'),
    AGE,
    column('Version', 'Kubelet Version reported by the node.'),
    column('Internal-IP', 'List of internal IPs associated with the node', 1),
    column('External-IP', 'List of external IPs associated with the node', 1),
    column('OS-Image', 'OS image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', 1),
    column('Kernel-Version', 'Kernel version reported by the node.', 1),
    column('Container-Runtime', 'Container runtime version reported by the node.', 1),
  ],
};

const age = (timestamp: string | undefined, now: number): string => (timestamp ? humanDuration(now - Date.parse(timestamp)) : '<unknown>');

function podCells(pod: MirrorPod, now: number): (string | number)[] {
  const printed = printedStatus(pod);
  const gates = pod.spec.readinessGates as { conditionType: string }[] | undefined;
  const readinessGates = gates?.length
    ? `${gates.filter((gate) => pod.status.conditions.some((condition) => condition.type === gate.conditionType && condition.status === 'True')).length}/${gates.length}`
    : '<none>';
  return [pod.metadata.name, printed.ready, printed.status, printed.restarts, age(pod.metadata.creationTimestamp, now), pod.status.podIP ?? '<none>', typeof pod.spec.nodeName === 'string' && pod.spec.nodeName !== '' ? pod.spec.nodeName : '<none>', '<none>', readinessGates];
}

function eventCells(event: V1Event, now: number): (string | number)[] {
  const lastSeen = age(event.lastTimestamp, now);
  const firstSeen = age(event.firstTimestamp, now);
  const seen = event.count > 1 ? `${lastSeen} (x${event.count} over ${firstSeen})` : lastSeen;
  const object = `${event.involvedObject.kind.toLowerCase()}/${event.involvedObject.name}`;
  return [seen, event.type, event.reason, object, event.involvedObject.fieldPath ?? '', `${event.source.component}, ${event.source.host}`, event.message.trim(), firstSeen, event.count, event.metadata.name];
}

function nodeCells(node: V1Node, now: number): (string | number)[] {
  const ready = node.status.conditions.find((condition) => condition.type === 'Ready');
  const status = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
  const internal = node.status.addresses.filter((address) => address.type === 'InternalIP').map((address) => address.address);
  const info = node.status.nodeInfo;
  return [node.metadata.name, status, '<none>', age(node.metadata.creationTimestamp, now), info.kubeletVersion, internal.join(',') || '<none>', '<none>', info.osImage || '<unknown>', info.kernelVersion || '<unknown>', info.containerRuntimeVersion || '<unknown>'];
}

/** The row's object as `includeObject` asks: none, only its metadata, or all of it. */
function rowObject(object: StoredObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return object;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

/** The Table for `objects` of `resource`. */
export function toTable(resource: ResourceName, objects: readonly StoredObject[], options: { resourceVersion: string; includeObject: IncludeObject; now?: number; noHeaders?: boolean }): Table {
  const now = options.now ?? Date.now();
  const cells = (object: StoredObject) => {
    switch (resource) {
      case 'pods':
        return podCells(object as unknown as MirrorPod, now);
      case 'events':
        return eventCells(object as unknown as V1Event, now);
      case 'nodes':
        return nodeCells(object as unknown as V1Node, now);
    }
  };
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: options.resourceVersion },
    columnDefinitions: options.noHeaders ? [] : COLUMNS[resource],
    rows: objects.map((object) => {
      const row: TableRow = { cells: cells(object) };
      const included = rowObject(object, options.includeObject);
      if (included !== undefined) row.object = included;
      return row;
    }),
  };
}
