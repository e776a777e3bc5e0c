// systemd's notify protocol, for the unit's Type=notify: READY=1 once the first reconcile pass
// has ended, WATCHDOG=1 from the event loop while it turns, STOPPING=1 when the agent stops.
//
// The protocol is a datagram on an AF_UNIX socket, which Node cannot send. Each message goes
// through systemd's own `systemd-notify`, present wherever systemd is, with `--pid` naming the
// agent: root may send credentials naming another process, so the unit keeps
// NotifyAccess=main (only the agent's word counts) though a child sends it. The other ways were
// a native addon (a build per architecture for the package, and one more thing to break on a
// device) or a hand-made datagram over some other tool; neither is as plain.
import { execa } from 'execa';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** How long one systemd-notify may take before it is given up on (it only writes a datagram). */
const SEND_TIMEOUT_MS = 5_000;

export interface SystemdNotifierOptions {
  /** The environment systemd started the agent with (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID). */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** The agent's pid, named in every message. */
  pid?: number;
  /** The systemd-notify to run (a test's fake; default from PATH). */
  command?: string;
}

/** Tells systemd what the agent is doing; does nothing when systemd did not ask (no NOTIFY_SOCKET). */
export class SystemdNotifier {
  readonly #options: SystemdNotifierOptions;
  readonly #pid: number;
  #watchdog: NodeJS.Timeout | undefined;
  #failureLogged = false;
  #sending: Promise<void> = Promise.resolve();

  constructor(options: SystemdNotifierOptions) {
    this.#options = options;
    this.#pid = options.pid ?? process.pid;
  }

  /** Whether systemd listens: the agent runs under a Type=notify unit. */
  get enabled(): boolean {
    return Boolean(this.#options.env.NOTIFY_SOCKET);
  }

  /**
   * The watchdog interval systemd asked for (WatchdogSec=), in ms, when it is meant for this
   * process; undefined otherwise.
   */
  get watchdogMs(): number | undefined {
    const { WATCHDOG_USEC: usec, WATCHDOG_PID: pid } = this.#options.env;
    if (!this.enabled || !usec) return undefined;
    if (pid && Number(pid) !== this.#pid) return undefined;
    const ms = Number(usec) / 1000;
    return Number.isFinite(ms) && ms > 0 ? ms : undefined;
  }

  /** READY=1: the first pass has ended; the status line says what the agent does. */
  ready(status: string): Promise<void> {
    return this.#send(['--ready', `--status=${status}`]);
  }

  /** A free-text status line (`systemctl status` shows it). */
  status(status: string): Promise<void> {
    return this.#send([`--status=${status}`]);
  }

  /** STOPPING=1: systemd then knows the exit that follows is asked for. */
  stopping(): Promise<void> {
    this.stopWatchdog();
    return this.#send(['--status=stopping; pods keep running', 'STOPPING=1']);
  }

  /**
   * Pings the watchdog at half its interval, from a timer: a blocked event loop sends nothing,
   * and systemd restarts the agent (which adopts its pods) after WatchdogSec.
   */
  startWatchdog(): void {
    const ms = this.watchdogMs;
    if (ms === undefined || this.#watchdog) return;
    void this.#send(['WATCHDOG=1']);
    this.#watchdog = setInterval(() => void this.#send(['WATCHDOG=1']), Math.max(ms / 2, 500));
    this.#watchdog.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** One message; sent in order, each bounded in time; a failure is logged once, never thrown. */
  #send(args: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const { logger, env, command = 'systemd-notify' } = this.#options;
    this.#sending = this.#sending.then(async () => {
      try {
        await execa(command, [`--pid=${this.#pid}`, ...args], { env, extendEnv: false, timeout: SEND_TIMEOUT_MS, stdin: 'ignore' });
      } catch (error) {
        if (this.#failureLogged) return;
        this.#failureLogged = true;
        logger.warn(`telling systemd failed (${args.join(' ')}): ${errorMessage(error)}`, { event: 'NotifyFailed' });
      }
    });
    return this.#sending;
  }
}
