// Network probes inside a pod's network namespace without starting Node there. Each connection is
//   nsenter --target <pid> --net -- busybox nc <host> <port>
// whose stdin and stdout become a stream.Duplex that Node's own http, tls and http2 clients use as
// their socket (net-probe.ts), so the HTTP, TLS and gRPC logic and its wording stay in the agent.
// A tcpSocket probe is `... busybox nc <host> <port> -e busybox true`: nc runs `true` once the
// connection is open, so exit 0 means it opened, and the connection closes when `true` exits. The
// host is the pod's own 127.0.0.1 (the pod's address is never used). About 3 ms of CPU a
// connection, against ~110 ms for a Node process started in the namespace.
//
// What busybox's nc says (1.35): a failed connect is "nc: can't connect to remote host (<ip>):
// <strerror>", a later socket error "nc: <what>: <strerror>", both exit 1; on EOF from the server
// it exits 0 after writing out what it read; EOF on its stdin shuts down the write side only.
// nsenter's own failures (no such process, no busybox) start with "nsenter: ".
import { Duplex } from 'node:stream';
import { execa } from 'execa';
import type { Dialer, DialTarget } from './net-probe.js';
import { NetnsError } from './probe-error.js';

export interface NetnsDialerOptions {
  /** A process in the pod (the container's main process): its network namespace is the pod's. */
  pid: number;
  /** The nsenter binary (util-linux). */
  nsenterPath: string;
  /** The busybox binary, run in the host's file system with the pod's network. */
  busyboxPath: string;
}

/** Time allowed for nsenter and nc to start, on top of the probe's own timeout (a backstop only). */
const START_ALLOWANCE_MS = 5000;
/** strerror texts nc prints, as the errno codes Node's sockets carry (describeNetError words them as Go does). */
const ERRNO_CODES: Record<string, string> = {
  'Connection refused': 'ECONNREFUSED',
  'No route to host': 'EHOSTUNREACH',
  'Network is unreachable': 'ENETUNREACH',
  'Connection timed out': 'ETIMEDOUT',
  'Connection reset by peer': 'ECONNRESET',
  'Broken pipe': 'EPIPE',
};

/** Dials from inside the network namespace of `options.pid`, one nc process a connection. */
export class NetnsDialer implements Dialer {
  readonly #options: NetnsDialerOptions;

  constructor(options: NetnsDialerOptions) {
    this.#options = options;
  }

  connect(target: DialTarget): Duplex {
    return new ProcessStream(spawnNc(this.#options, target, [], 'pipe'), target);
  }

  async touch(target: DialTarget): Promise<void> {
    const result = await spawnNc(this.#options, target, ['-e', this.#options.busyboxPath, 'true'], 'ignore');
    if (result.isCanceled) throw target.signal.reason ?? new Error('cancelled');
    if (result.exitCode === 0) return;
    throw dialError(result, target);
  }
}

/** `nsenter … busybox nc host port …extra`; its stdin and stdout are the connection when piped. */
function spawnNc(options: NetnsDialerOptions, target: DialTarget, extra: string[], connection: 'pipe' | 'ignore') {
  const { pid, nsenterPath, busyboxPath } = options;
  return execa(nsenterPath, ['--target', String(pid), '--net', '--', busyboxPath, 'nc', target.host, String(target.port), ...extra], {
    stdin: connection,
    stdout: connection,
    stderr: 'pipe',
    // stdout is the connection (read by ProcessStream); stderr holds nc's or nsenter's words.
    buffer: { stdout: false, stderr: true },
    reject: false,
    timeout: target.timeoutMs + START_ALLOWANCE_MS,
    cancelSignal: target.signal,
    // A clean environment: the agent's own has nothing nc needs.
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    stripFinalNewline: true,
  });
}

type NcProcess = ReturnType<typeof spawnNc>;
type NcResult = Awaited<NcProcess>;

/**
 * A child process's stdin and stdout as one Duplex. Its end (EOF) comes only once the process has
 * exited too, since only the exit status tells a closed connection (exit 0) from one that never
 * opened: that is then the stream's error.
 */
class ProcessStream extends Duplex {
  readonly #subprocess: NcProcess;
  readonly #target: DialTarget;
  #stdoutEnded = false;
  #result: NcResult | undefined;

  constructor(subprocess: NcProcess, target: DialTarget) {
    super({ allowHalfOpen: true });
    this.#subprocess = subprocess;
    this.#target = target;
    const { stdin, stdout } = subprocess;
    // Writes to an nc that already exited fail (EPIPE): its exit status says why, not the pipe.
    stdin?.on('error', () => {});
    stdout?.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    stdout?.once('end', () => {
      this.#stdoutEnded = true;
      this.#finish();
    });
    void subprocess.then((result) => {
      this.#result = result;
      this.#finish();
    });
  }

  override _read(): void {
    this.#subprocess.stdout?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stdin = this.#subprocess.stdin;
    if (!stdin || stdin.destroyed) return callback();
    stdin.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Half-close: nc shuts down its side of the connection and keeps reading the server's.
    const stdin = this.#subprocess.stdin;
    if (!stdin || stdin.destroyed) return callback();
    stdin.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#result === undefined) this.#subprocess.kill('SIGKILL');
    callback(error);
  }

  /** Ends the stream once nc's output is read and it has exited: EOF, or the error it reported. */
  #finish(): void {
    const result = this.#result;
    if (!this.#stdoutEnded || result === undefined || this.destroyed) return;
    if (result.exitCode === 0) this.push(null);
    else this.destroy(dialError(result, this.#target));
  }
}

/** The error a failed nc (or nsenter) run stands for. */
function dialError(result: NcResult, target: DialTarget): Error {
  const lines = String(result.stderr ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const nsenter = lines.find((line) => line.startsWith('nsenter: '));
  if (nsenter !== undefined) return new NetnsError(`probe in the pod's network namespace failed: ${nsenter}`);
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return new NetnsError(`probe in the pod's network namespace failed: ${result.command.split(' ')[0] ?? 'nsenter'} not found`);
  }
  const nc = lines.findLast((line) => line.startsWith('nc: '));
  const strerror = nc === undefined ? undefined : /: ([^:]+)$/.exec(nc)?.[1];
  const code = strerror === undefined ? undefined : ERRNO_CODES[strerror];
  if (nc !== undefined && /^nc: bad address/.test(nc)) {
    return Object.assign(new Error(nc), { code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: target.host });
  }
  if (code !== undefined) {
    const syscall = nc?.includes("can't connect") ? 'connect' : 'read';
    return Object.assign(new Error(`${syscall} ${code} ${target.host}:${target.port}`), { code, syscall, address: target.host, port: target.port });
  }
  // Anything else nc said (or its end, unexplained) fails the probe with its words.
  return new Error(nc ?? lines.at(-1) ?? `nc: ${result.signal ? `killed by ${result.signal}` : `exit code ${String(result.exitCode)}`}`);
}
