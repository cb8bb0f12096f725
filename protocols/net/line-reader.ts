/**
 * Reading a line-based protocol (LMTP, POP3) from a socket: command lines with a length limit enforced while
 * reading, and raw bytes for message data (LMTP DATA). Pull-based, so a session handles one command at a time
 * while pipelined commands wait in the buffer; the socket is paused when too much is buffered.
 *
 * `detach()` stops reading from the socket (before a STARTTLS/STLS upgrade) and `attach()` continues on the TLS
 * socket; bytes the client pipelined after the upgrade command are dropped with `discardBuffered()` (RFC 3207 §4.2,
 * RFC 2595 §4).
 */
import type { Duplex } from 'node:stream';
import { concatBytes } from '../../storage/bytes.ts';
import type { CommandBudget } from './command-budget.ts';

export type LineResult = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'toolong' };

export interface LineReaderOptions {
  /** Longest line accepted (bytes, without CRLF); longer ones are skipped and reported as `toolong`. */
  maxLineLength: number;
  /** Pause the socket when this many bytes wait unread. Default 1 MiB. */
  highWaterMark?: number;
  /**
   * Time allowed per line (protocols/net/command-budget.ts): started by a line's first byte, stopped when the line is
   * complete; `startBudget()` / `stopBudget()` run it around other input (LMTP DATA). Counts every byte received.
   */
  budget?: CommandBudget | null;
  /** Called before the reader waits for input or stops reading (the session sends replies it held back). */
  beforeWait?: () => void;
}

const decoder = new TextDecoder('utf-8');

export class LineReader {
  readonly #maxLineLength: number;
  readonly #highWaterMark: number;
  readonly #budget: CommandBudget | null;
  readonly #beforeWait: () => void;
  #buffer: Uint8Array = new Uint8Array(0);
  /** Space the buffer grows into (see #append); `#buffer` is a view of it, or of a chunk as received. */
  #store: Uint8Array = new Uint8Array(0);
  #socket: Duplex | null = null;
  #ended = false;
  #paused = false;
  #wake: (() => void) | null = null;
  /** Skipping the rest of an over-long line. */
  #skipping = false;

  readonly #onData = (chunk: Uint8Array | string): void => {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
    this.#budget?.add(bytes.length);
    this.#append(bytes);
    if (this.#buffer.length > this.#highWaterMark && this.#socket && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#signal();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#signal();
  };

  constructor(socket: Duplex, options: LineReaderOptions) {
    this.#maxLineLength = options.maxLineLength;
    this.#highWaterMark = options.highWaterMark ?? 1024 * 1024;
    this.#budget = options.budget ?? null;
    this.#beforeWait = options.beforeWait ?? (() => {});
    this.attach(socket);
  }

  /** Starts (or continues, after a TLS upgrade) reading from `socket`. */
  attach(socket: Duplex): void {
    this.detach();
    this.#socket = socket;
    this.#ended = false;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
    this.#paused = false;
    socket.resume();
  }

  /** Stops reading from the current socket (listeners removed, socket paused). */
  detach(): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#beforeWait();
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onEnd);
    socket.off('error', this.#onEnd);
    socket.pause();
    this.#socket = null;
  }

  /** Stops reading for good (a command timed out): pending and later reads see the end of input. */
  end(): void {
    this.detach();
    this.#ended = true;
    this.#budget?.stop();
    this.#signal();
  }

  /** Runs the command budget around input that is not a line (LMTP DATA). */
  startBudget(): void {
    this.#budget?.start();
  }

  stopBudget(): void {
    this.#budget?.stop();
  }

  /** Bytes received but not read yet. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** True when the peer closed and everything buffered has been read. */
  get ended(): boolean {
    return this.#ended && this.#buffer.length === 0;
  }

  /** Drops everything buffered; returns how many bytes that was. */
  discardBuffered(): number {
    const n = this.#buffer.length;
    this.#buffer = new Uint8Array(0);
    this.#resumeIfDrained();
    return n;
  }

  /** Puts bytes back in front of the buffer (what a DATA reader read past its terminator). */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#buffer = this.#buffer.length === 0 ? bytes : concatBytes([bytes, this.#buffer]);
  }

  /**
   * Appends received bytes. The buffer grows by doubling into space this reader owns, so a line arriving one byte
   * per packet costs linear time (copying the whole buffer per chunk was quadratic: 64 KB in 1-byte chunks took
   * about a second of event loop). Only space past every view handed out is written.
   */
  #append(bytes: Uint8Array): void {
    const current = this.#buffer;
    if (current.length === 0) {
      this.#buffer = bytes;
      return;
    }
    const store = this.#store;
    const end = current.byteOffset + current.length - store.byteOffset;
    if (current.buffer === store.buffer && end + bytes.length <= store.length) {
      store.set(bytes, end);
      this.#buffer = store.subarray(current.byteOffset - store.byteOffset, end + bytes.length);
      return;
    }
    const grown = new Uint8Array(Math.max(4096, 2 * (current.length + bytes.length)));
    grown.set(current, 0);
    grown.set(bytes, current.length);
    this.#store = grown;
    this.#buffer = grown.subarray(0, current.length + bytes.length);
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #resumeIfDrained(): void {
    if (this.#paused && this.#socket && this.#buffer.length < this.#highWaterMark / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /** Waits for more bytes; false at end of input. */
  async #more(): Promise<boolean> {
    this.#beforeWait();
    if (this.#ended) return false;
    this.#resumeIfDrained();
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    return true;
  }

  /** The next line without its CRLF (or LF), `toolong` for a line over the limit, null at end of input. */
  async readLine(): Promise<LineResult | null> {
    try {
      return await this.#readLine();
    } finally {
      this.#budget?.stop();
    }
  }

  async #readLine(): Promise<LineResult | null> {
    let scanned = 0;
    for (;;) {
      // the line's clock starts with its first byte (a client waiting between commands is the idle timer's)
      if (this.#buffer.length > 0 || this.#skipping) this.#budget?.start();
      const lf = this.#buffer.indexOf(0x0a, scanned);
      if (lf >= 0) {
        const line = this.#buffer.subarray(0, lf);
        this.#buffer = this.#buffer.subarray(lf + 1);
        this.#resumeIfDrained();
        if (this.#skipping) {
          this.#skipping = false;
          return { kind: 'toolong' };
        }
        const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
        if (end > this.#maxLineLength) return { kind: 'toolong' };
        return { kind: 'line', text: decoder.decode(line.subarray(0, end)) };
      }
      if (this.#buffer.length > this.#maxLineLength + 1) {
        // over the limit and still no end: drop what we have, keep skipping to the next LF
        this.#skipping = true;
        this.#buffer = new Uint8Array(0);
        scanned = 0;
      } else {
        scanned = this.#buffer.length;
      }
      if (!(await this.#more())) {
        if (this.#buffer.length === 0 && !this.#skipping) return null;
        // a last line without a line break: a client that closed mid-command; nothing to answer
        this.#buffer = new Uint8Array(0);
        return null;
      }
    }
  }

  /** Whatever bytes are buffered (at least one), waiting if there are none; null at end of input. */
  async readBytes(): Promise<Uint8Array | null> {
    while (this.#buffer.length === 0) {
      if (!(await this.#more())) return null;
    }
    const bytes = this.#buffer;
    this.#buffer = new Uint8Array(0);
    this.#resumeIfDrained();
    return bytes;
  }
}

/** Writes to a socket, waiting for 'drain' when its buffer is full (so large responses stream). */
export function writeTo(socket: Duplex, data: Uint8Array | string): Promise<void> {
  if (socket.destroyed || socket.writableEnded) return Promise.reject(new Error('socket closed'));
  if (socket.write(data)) return Promise.resolve();
  if (socket.writableCorked) socket.uncork(); // held-back replies filled the buffer: 'drain' needs them sent
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      socket.off('error', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('socket closed'));
    };
    socket.on('drain', onDrain);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
