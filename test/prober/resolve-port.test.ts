// Port resolution for probes: by number, by a container port's name, or a number in a string.
import t from 'tap';
import { resolveContainerPort } from '../../src/prober/resolve-port.js';

const ports = [
  { name: 'http', containerPort: 8080 },
  { name: 'metrics', containerPort: 9090, protocol: 'TCP' as const },
  { containerPort: 7000 },
];

t.test('a number is taken as it is', async (t) => {
  t.strictSame(resolveContainerPort(80, ports), { port: 80 });
  t.strictSame(resolveContainerPort(65535, []), { port: 65535 });
});

t.test('a name is looked up among the container ports', async (t) => {
  t.strictSame(resolveContainerPort('http', ports), { port: 8080 });
  t.strictSame(resolveContainerPort('metrics', ports), { port: 9090 });
});

t.test('a number written as a string is the last resort', async (t) => {
  t.strictSame(resolveContainerPort('8081', ports), { port: 8081 });
});

t.test('an unknown name or an impossible number is an error, in the kubelet words', async (t) => {
  t.strictSame(resolveContainerPort('grpc', ports), { error: 'port grpc not found' });
  t.strictSame(resolveContainerPort(0, ports), { error: 'invalid port number: 0' });
  t.strictSame(resolveContainerPort('70000', ports), { error: 'invalid port number: 70000' });
});
