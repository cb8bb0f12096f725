/**
 * Buffered socket input for the IMAP reader: bytes pushed in by the socket, pulled out as lines or exact byte
 * counts. Memory stays bounded: a line longer than the caller's limit fails as soon as that many bytes arrived
 * without a line end, and the socket is paused while more than `highWater` bytes wait unread.
 */

/** Told when input arrives (InputBuffer.whenData). */
export interface InputWatcher {
  inputArrived(): void;
}

export interface FlowControl {
  pause(): void;
  resume(): void;
  /** The reader is about to wait for the client (replies held for pipelined commands must go out now). */
  waiting?(): void;
}

export type LineResult = { type: 'line'; bytes: Uint8Array } | { type: 'toolong' } | { type: 'end' };

const LF = 0x0a;
const CR = 0x0d;

/** The client closed the connection before a literal's last byte: an ordinary end of input, not a server fault. */
export class InputEndedError extends Error {
  constructor() {
    super('connection closed inside a literal');
    this.name = 'InputEndedError';
  }
}

const EMPTY = new Uint8Array(0);
/** Smallest buffer allocated for input (grown by doubling). */
const MIN_BUFFER = 4096;

export class InputBuffer {
  /** Empty while nothing is buffered and the reader waits: an idle connection holds no input buffer. */
  #buf = EMPTY;
  #start = 0;
  #end = 0;
  /** Bytes from #start already searched for LF without finding one. */
  #scanned = 0;
  #ended = false;
  #wake: (() => void) | InputWatcher | null = null;
  #flow: FlowControl | null;
  #paused = false;
  readonly highWater: number;

  constructor(options: { flow?: FlowControl | null; highWater?: number } = {}) {
    this.#flow = options.flow ?? null;
    this.highWater = options.highWater ?? 256 * 1024;
  }

  /** Where pause/resume go (replaced after STARTTLS swaps the socket). */
  setFlow(flow: FlowControl | null): void {
    this.#flow = flow;
    this.#paused = false;
  }

  get buffered(): number {
    return this.#end - this.#start;
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(chunk: Uint8Array): void {
    if (this.#ended || chunk.length === 0) return;
    this.#reserve(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    if (!this.#paused && this.buffered > this.highWater && this.#flow) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** Drops everything buffered (after STARTTLS: nothing sent in plaintext may be read as if it came over TLS). */
  clear(): void {
    this.#start = this.#end = this.#scanned = 0;
  }

  /** Removes and returns everything buffered (COMPRESS: bytes that arrived after the command are compressed ones). */
  takeAll(): Uint8Array {
    const bytes = this.#buf.slice(this.#start, this.#end);
    this.clear();
    return bytes;
  }

  /** Puts bytes back in front (a line read in raw mode that turned out to be a command). */
  unshift(bytes: Uint8Array): void {
    const rest = this.#buf.slice(this.#start, this.#end);
    const next = new Uint8Array(Math.max(MIN_BUFFER, bytes.length + rest.length));
    next.set(bytes, 0);
    next.set(rest, bytes.length);
    this.#buf = next;
    this.#start = 0;
    this.#end = bytes.length + rest.length;
    this.#scanned = 0;
  }

  #reserve(extra: number): void {
    if (this.#end + extra <= this.#buf.length) return;
    const live = this.#end - this.#start;
    if (live + extra <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let size = Math.max(MIN_BUFFER, this.#buf.length * 2);
      while (size < live + extra) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = live;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    if (typeof wake === 'function') wake();
    else wake?.inputArrived();
  }

  #consumed(): void {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#paused && this.buffered <= this.highWater / 2) {
      this.#paused = false;
      this.#flow?.resume();
    }
  }

  async #more(): Promise<void> {
    if (this.#start === this.#end) {
      // waiting with nothing buffered: let the buffer go
      this.#buf = EMPTY;
      this.#start = this.#end = this.#scanned = 0;
    }
    if (this.#paused) {
      // the reader wants more than is buffered: let the socket flow again
      this.#paused = false;
      this.#flow?.resume();
    }
    this.#flow?.waiting?.();
    await new Promise<void>((resolve) => (this.#wake = resolve));
  }

  /**
   * The next line without its CRLF (a bare LF is accepted too). `toolong`: more than `max` bytes arrived without
   * a line end; those bytes stay buffered (call `skipLine`).
   */
  async readLine(max: number): Promise<LineResult> {
    for (;;) {
      const from = this.#start + this.#scanned;
      const lf = this.#buf.subarray(from, this.#end).indexOf(LF);
      if (lf >= 0) {
        const at = from + lf;
        if (at - this.#start > max + 1) return { type: 'toolong' };
        const stop = at > this.#start && this.#buf[at - 1] === CR ? at - 1 : at;
        const bytes = this.#buf.slice(this.#start, stop);
        this.#start = at + 1;
        this.#scanned = 0;
        this.#consumed();
        return { type: 'line', bytes };
      }
      this.#scanned = this.#end - this.#start;
      if (this.#scanned > max + 1) return { type: 'toolong' };
      if (this.#ended) return { type: 'end' };
      await this.#more();
    }
  }

  /** Resolves once at least one byte is buffered (true) or the input ended with nothing buffered (false). */
  async waitForData(): Promise<boolean> {
    while (this.#start === this.#end) {
      if (this.#ended) return false;
      await this.#more();
    }
    return true;
  }

  /**
   * Tells `watcher` once input is buffered or has ended (at once when it already is), without a pending promise or a
   * callback closure: for a session that waits long (IDLE). Only while no read is waiting.
   */
  whenData(watcher: InputWatcher): void {
    if (this.#start !== this.#end || this.#ended) return queueMicrotask(() => watcher.inputArrived());
    this.#buf = EMPTY;
    this.#start = this.#end = this.#scanned = 0;
    this.#wake = watcher;
  }

  /** Discards input up to and including the next LF, however long. False when the input ended first. */
  async skipLine(): Promise<boolean> {
    for (;;) {
      const lf = this.#buf.subarray(this.#start, this.#end).indexOf(LF);
      if (lf >= 0) {
        this.#start += lf + 1;
        this.#scanned = 0;
        this.#consumed();
        return true;
      }
      this.#start = this.#end;
      this.#scanned = 0;
      this.#consumed();
      if (this.#ended) return false;
      await this.#more();
    }
  }

  /** Exactly `size` bytes, as chunks as they arrive; throws when the input ends first. */
  async *read(size: number): AsyncGenerator<Uint8Array> {
    let left = size;
    while (left > 0) {
      if (this.#start === this.#end) {
        if (this.#ended) throw new InputEndedError();
        await this.#more();
        continue;
      }
      const take = Math.min(left, this.#end - this.#start);
      const chunk = this.#buf.slice(this.#start, this.#start + take);
      this.#start += take;
      this.#scanned = 0;
      left -= take;
      this.#consumed();
      yield chunk;
    }
  }

  /** Exactly `size` bytes in one array (small literals only). */
  async readBytes(size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    let offset = 0;
    while (offset < size) {
      if (this.#start === this.#end) {
        if (this.#ended) throw new InputEndedError();
        await this.#more();
        continue;
      }
      // copied straight from the buffer (read() would copy each piece once more on the way)
      const take = Math.min(size - offset, this.#end - this.#start);
      out.set(this.#buf.subarray(this.#start, this.#start + take), offset);
      offset += take;
      this.#start += take;
      this.#scanned = 0;
      this.#consumed();
    }
    return out;
  }
}
