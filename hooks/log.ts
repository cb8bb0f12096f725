/**
 * Structured logging: JSON lines on stdout, or a readable single line per entry when stdout is a terminal.
 * Loggers are cheap child objects carrying bound fields (plugin, hook, session id, ...).
 *
 * One entry is always one line, whatever a client put in a field (a user name with CR/LF, U+2028): fields are
 * JSON-encoded in both formats, the message of a pretty line is escaped the same way, and the line separators
 * JSON leaves raw (U+0085, U+2028, U+2029) are written as \u escapes. Log readers such as fail2ban rely on it.
 */
import { stdoutIsTerminal, writeOut } from './runtime.ts';

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
  const format = options.format === 'auto' || !options.format ? (stdoutIsTerminal() ? 'pretty' : 'json') : options.format;
  const sink = options.sink ?? ((line: string) => writeOut(line + '\n'));
  return new FieldLogger({ level, threshold: LEVELS[level], format, sink }, bound);
}

interface LoggerSetup {
  level: LogLevel;
  threshold: number;
  format: 'json' | 'pretty';
  sink: (line: string, entry: LogFields) => void;
}

/**
 * Methods on the prototype and the setup shared by every child: a child logger (one per session and per command)
 * is two small objects, not a set of closures.
 */
class FieldLogger implements Logger {
  readonly #setup: LoggerSetup;
  readonly #bound: LogFields;

  constructor(setup: LoggerSetup, bound: LogFields) {
    this.#setup = setup;
    this.#bound = bound;
  }

  get level(): LogLevel {
    return this.#setup.level;
  }

  trace(msg: string, fields?: LogFields): void {
    this.#emit('trace', msg, fields);
  }

  debug(msg: string, fields?: LogFields): void {
    this.#emit('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#emit('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.#emit('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.#emit('error', msg, fields);
  }

  child(fields: LogFields): Logger {
    return new FieldLogger(this.#setup, { ...this.#bound, ...fields });
  }

  #emit(lvl: LogLevel, msg: string, fields?: LogFields): void {
    const { threshold, format, sink } = this.#setup;
    if (LEVELS[lvl] < threshold) return;
    const entry: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...this.#bound, ...fields };
    if (entry.err !== undefined) entry.err = serializeError(entry.err);
    let line: string;
    if (format === 'pretty') {
      const { time, level: l, msg: m, ...rest } = entry;
      const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
      line = `${String(time).slice(11, 23)} ${String(l).toUpperCase().padEnd(5)} ${oneLine(String(m))}${extra}`;
    } else {
      line = JSON.stringify(entry);
    }
    sink(BREAKS.test(line) ? line.replace(BREAKS_ALL, escapeBreak) : line, entry);
  }
}

/** Characters some readers take as a line break that JSON.stringify leaves as they are. */
const BREAKS = /[\u0085\u2028\u2029]/;
const BREAKS_ALL = /[\u0085\u2028\u2029]/g;

function escapeBreak(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** A pretty line's message as it would read inside a JSON string (control characters escaped), unquoted. */
function oneLine(msg: string): string {
  return /[\u0000-\u001f\u007f]/.test(msg) ? JSON.stringify(msg).slice(1, -1) : msg;
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ level: 'silent', sink: () => {} });
