// The notify protocol as systemd receives it: the real systemd-notify sends each message to a
// real AF_UNIX datagram socket (made by python3, since Node cannot bind one), which reads the
// message and the sender's credentials as systemd does. The pid in the credentials must be the
// agent's, or NotifyAccess=main drops the message.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { SystemdNotifier } from '../../src/service/systemd-notify.js';
import { recordingLogger, untilWithin } from '../support/recording.js';

const until = untilWithin(10_000, 20);

/** Prints one JSON line per datagram: its text and the pid in its credentials. */
const LISTENER = `
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = next((struct.unpack("iII", data[:12])[0] for level, kind, data in anc if kind == socket.SCM_CREDENTIALS), None)
    print(json.dumps({"message": msg.decode(), "pid": pid}), flush=True)
`;

interface Datagram {
  message: string;
  pid: number | null;
}

async function listener(t: Test): Promise<{ socket: string; received: Datagram[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-notify-'));
  const socket = join(dir, 'notify');
  const child: ChildProcess = spawn('python3', ['-c', LISTENER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(async () => {
    child.kill();
    await rm(dir, { recursive: true, force: true });
  });
  const received: Datagram[] = [];
  let listening = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as Datagram & { listening?: boolean };
    if (parsed.listening) listening = true;
    // systemd-notify follows each message with a barrier (it waits for systemd to have read it).
    else if (parsed.message !== 'BARRIER=1') received.push(parsed);
  });
  await until(() => listening, 'the socket to be bound');
  return { socket, received };
}

t.test('READY, STATUS and STOPPING reach the socket, in order, naming the agent', async (t) => {
  const { socket, received } = await listener(t);
  const { logger, lines } = recordingLogger();
  // The pid must be a live process of the sender's (the kernel refuses credentials naming any
  // other): this test's own, as the agent's is when it runs.
  const notifier = new SystemdNotifier({ env: { ...process.env, NOTIFY_SOCKET: socket }, logger });
  t.ok(notifier.enabled);
  await notifier.ready('supervising the pods of /etc/pods.d');
  await notifier.status('2 pods');
  await notifier.stopping();
  await until(() => received.length === 3, 'three datagrams');
  t.match(received[0]!.message, /^READY=1\nSTATUS=supervising the pods of \/etc\/pods.d\n/m);
  t.match(received[1]!.message, /^STATUS=2 pods$/m);
  t.match(received[2]!.message, /^STOPPING=1$/m);
  t.same(received.map((one) => one.pid), [process.pid, process.pid, process.pid], 'sent in the name of the agent (NotifyAccess=main)');
  t.same(lines, [], 'nothing logged');
});

t.test('the watchdog is fed at half its interval, only when meant for this process', async (t) => {
  const { socket, received } = await listener(t);
  const { logger } = recordingLogger();
  const notifier = new SystemdNotifier({ env: { ...process.env, NOTIFY_SOCKET: socket, WATCHDOG_USEC: '1000000', WATCHDOG_PID: String(process.pid) }, logger });
  t.equal(notifier.watchdogMs, 1000);
  notifier.startWatchdog();
  t.teardown(() => notifier.stopWatchdog());
  await until(() => received.filter((one) => one.message.includes('WATCHDOG=1')).length >= 3, 'three pings', 5_000);
  t.ok(received.every((one) => one.pid === process.pid), 'each in the name of the agent');
  notifier.stopWatchdog();

  const other = new SystemdNotifier({ env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' }, logger, pid: 4242 });
  t.equal(other.watchdogMs, undefined, 'WATCHDOG_PID names another process: no watchdog here');
  const unasked = new SystemdNotifier({ env: { NOTIFY_SOCKET: socket }, logger, pid: 4242 });
  t.equal(unasked.watchdogMs, undefined, 'no WatchdogSec: no watchdog');
});

t.test('without NOTIFY_SOCKET nothing is sent; a failing send is logged once and never thrown', async (t) => {
  const { logger, lines } = recordingLogger();
  const off = new SystemdNotifier({ env: {}, logger, command: '/nonexistent/systemd-notify' });
  t.notOk(off.enabled);
  await off.ready('x');
  t.same(lines, [], 'not run at all (the command does not exist)');

  const broken = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent/notify' }, logger });
  await broken.ready('x');
  await broken.stopping();
  t.equal(lines.length, 1, 'one warning');
  t.match(lines[0], /^warn: telling systemd failed \(--ready --status=x\)/);
});
