// The agent's logger: winston, one line per event. Text for a person at a terminal; under
// systemd, when stderr is the journal, text lines with syslog priority prefixes and no timestamp
// of their own (the journal stamps each line and files it by priority: `journalctl -p warning`);
// JSON lines for log shippers (the default when stderr is neither) or when asked for.
import { fstatSync } from 'node:fs';
import winston from 'winston';
import { escapeText } from './escape.js';

export type LogFormat = 'text' | 'json' | 'journal';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json', 'journal'];
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export type Logger = winston.Logger;

/** syslog priorities, which journald reads from a `<N>` line prefix (sd-daemon(3)). */
const JOURNAL_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/**
 * True when file descriptor `fd` is the journal's stream: systemd sets JOURNAL_STREAM to the
 * device and inode of the stream it connects (systemd.exec(5)); a redirect makes them differ.
 */
export function isJournalStream(fd = 2, env: NodeJS.ProcessEnv = process.env): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const info = fstatSync(fd, { bigint: true });
    return info.dev === BigInt(match[1] ?? '') && info.ino === BigInt(match[2] ?? '');
  } catch {
    return false;
  }
}

/** The format when none is asked for: journal under systemd, text on a terminal, else JSON. */
export function defaultLogFormat(): LogFormat {
  if (isJournalStream()) return 'journal';
  return process.stderr.isTTY ? 'text' : 'json';
}

/** `key=value` for each field, strings bare unless they hold white space. */
function fieldsText(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([key, value]) => ` ${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
    .join('');
}

/**
 * Creates the logger for a command; `format` defaults by where stderr goes. Logs go to stderr,
 * leaving stdout for command output (validate, version); `stream` replaces it (tests).
 */
export function createLogger(options: { level: LogLevel; format?: LogFormat | undefined; stream?: NodeJS.WritableStream }): Logger {
  return winston.createLogger({
    level: options.level,
    format: lineFormat(options.format ?? defaultLogFormat()),
    transports: [options.stream ? new winston.transports.Stream({ stream: options.stream }) : new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })],
  });
}

/** Changes a running logger's level and format (a reloaded configuration); `format` undefined: the default. */
export function reconfigureLogger(logger: Logger, options: { level: LogLevel; format?: LogFormat | undefined }): void {
  logger.level = options.level;
  logger.format = lineFormat(options.format ?? defaultLogFormat());
}

/** Every line: fields escaped, stamped, then written in `format`. */
function lineFormat(format: LogFormat): winston.Logform.Format {
  const line = {
    text: winston.format.printf(({ level, message, timestamp, ...fields }) =>
      `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}${fieldsText(fields)}`),
    journal: winston.format.printf(({ level, message, timestamp: _timestamp, ...fields }) =>
      `<${JOURNAL_PRIORITY[level as LogLevel] ?? 6}>${String(message)}${fieldsText(fields)}`),
    json: winston.format.json(),
  }[format];
  return winston.format.combine(escapeFields(), winston.format.timestamp(), line);
}

/** Escapes control characters in the message and in every string field (see escape.ts). */
const escapeFields = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const value = info[key];
    if (typeof value === 'string') info[key] = escapeText(value);
  }
  return info;
});
