// The agent's logger: winston, one line per event. Text for a person at a terminal, JSON lines
// for journald and log shippers (the default when stdout is not a terminal).
import winston from 'winston';
import { escapeText } from './escape.js';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export type Logger = winston.Logger;

/** Creates the logger for a command; `format` defaults by whether stderr is a terminal. */
export function createLogger(options: { level: LogLevel; format?: LogFormat | undefined }): Logger {
  const format = options.format ?? (process.stderr.isTTY ? 'text' : 'json');
  const text = winston.format.printf((info) => {
    const { level, message, timestamp, ...fields } = info;
    const extra = Object.entries(fields)
      .filter(([key]) => typeof key === 'string')
      .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`)
      .join(' ');
    return `${String(timestamp)} ${level.toUpperCase().padEnd(5)} ${String(message)}${extra ? ` ${extra}` : ''}`;
  });
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(
      escapeFields(),
      winston.format.timestamp(),
      format === 'json' ? winston.format.json() : text,
    ),
    // Logs go to stderr, leaving stdout for command output (validate, version).
    transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })],
  });
}

/** Escapes control characters in the message and in every string field (see escape.ts). */
const escapeFields = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const value = info[key];
    if (typeof value === 'string') info[key] = escapeText(value);
  }
  return info;
});
