/**
 * Structured logging: JSON lines on stdout, or a readable single line per entry when stdout is a terminal.
 * Loggers are cheap child objects carrying bound fields (plugin, hook, session id, ...).
 */
import { stdoutIsTerminal, writeOut } from '../protocols/runtime.ts';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every entry. */
  child(fields: LogFields): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** 'json' | 'pretty' | 'auto' (pretty when stdout is a terminal). */
  format?: 'json' | 'pretty' | 'auto';
  /** Where lines go; defaults to stdout. Tests pass an array sink. */
  sink?: (line: string, entry: LogFields) => void;
}

function serializeError(err: unknown): unknown {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { name: err.name, message: err.message };
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (err.stack) out.stack = err.stack;
    return out;
  }
  return err;
}

export function createLogger(options: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const level = options.level ?? 'info';
  const threshold = LEVELS[level];
  const format = options.format === 'auto' || !options.format ? (stdoutIsTerminal() ? 'pretty' : 'json') : options.format;
  const sink = options.sink ?? ((line: string) => writeOut(line + '\n'));

  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[lvl] < threshold) return;
    const entry: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...bound, ...fields };
    if (entry.err !== undefined) entry.err = serializeError(entry.err);
    let line: string;
    if (format === 'pretty') {
      const { time, level: l, msg: m, ...rest } = entry;
      const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
      line = `${String(time).slice(11, 23)} ${String(l).toUpperCase().padEnd(5)} ${m}${extra}`;
    } else {
      line = JSON.stringify(entry);
    }
    sink(line, entry);
  };

  return {
    level,
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level, format, sink }, { ...bound, ...fields }),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: () => {} });
