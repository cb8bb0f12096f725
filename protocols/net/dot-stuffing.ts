/**
 * The SMTP/LMTP/POP3 end-of-data convention: a line holding only "." ends the data, and a line starting with "."
 * gets one more "." in front on the wire (RFC 5321 §4.5.2, RFC 1939 §3). Both directions work chunk by chunk,
 * across chunk boundaries, without ever holding the whole message.
 */

import { Buffer } from 'node:buffer';
import { concatBytes } from '../../storage/bytes.ts';

const DOT = 0x2e;
const CR = 0x0d;
const LF = 0x0a;

/** Line-start states of the unstuffer. */
type State = 'start' | 'middle' | 'dot' | 'dotcr';

export interface UnstuffResult {
  /** Message bytes from this chunk, unstuffed. */
  readonly data: Uint8Array;
  /** True when the terminating "." line was found. */
  readonly done: boolean;
  /** Bytes after the terminator (pipelined commands), when done. */
  readonly rest: Uint8Array;
}

/**
 * Incoming data (LMTP DATA): removes the stuffed dots and finds the terminator. The CRLF before the "." line
 * belongs to the message. A lone "." line ended by a bare LF is accepted too.
 */
export class DotUnstuffer {
  #state: State = 'start';

  /**
   * Between dots the bytes pass through untouched: the scan jumps from one line-starting dot to the next with a
   * native search for LF ".", and a chunk without one comes back as itself (a view, not a copy).
   */
  push(chunk: Uint8Array): UnstuffResult {
    const pieces: Uint8Array[] = [];
    const haystack = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'middle') {
        // data up to and including the LF before the next line-starting dot (or the end of the chunk)
        const at = haystack.indexOf(LF_DOT, i);
        const end = at < 0 ? chunk.length : at + 1;
        pieces.push(chunk.subarray(i, end));
        i = end;
        if (at >= 0 || chunk[end - 1] === LF) this.#state = 'start';
        continue;
      }
      const b = chunk[i]!;
      switch (this.#state) {
        case 'start':
          if (b === DOT) {
            this.#state = 'dot';
            i++;
            continue;
          }
          this.#state = 'middle';
          continue;
        case 'dot':
          if (b === CR) {
            this.#state = 'dotcr';
            i++;
            continue;
          }
          if (b === LF) return this.#done(pieces, chunk, i);
          // a stuffed dot: dropped, the rest of the line is data
          this.#state = 'middle';
          continue;
        case 'dotcr':
          if (b === LF) return this.#done(pieces, chunk, i);
          // ".\rX": the dot was stuffing, the CR is data
          pieces.push(CR_BYTE);
          this.#state = 'middle';
          continue;
      }
    }
    return { data: concatBytes(pieces), done: false, rest: new Uint8Array(0) };
  }

  #done(pieces: Uint8Array[], chunk: Uint8Array, i: number): UnstuffResult {
    this.#state = 'start';
    return { data: concatBytes(pieces), done: true, rest: chunk.subarray(i + 1) };
  }
}

const LF_DOT = Buffer.from([LF, DOT]);
const CR_BYTE = Uint8Array.of(CR);

/**
 * Outgoing multi-line data (POP3 RETR/TOP): dots doubled at line starts, a CRLF added when the data does not end
 * with a line break, then the "." terminator line.
 */
export async function* dotStuff(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let atLineStart = true;
  let lastWasLf = true;
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    let extra = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === DOT && (i === 0 ? atLineStart : chunk[i - 1] === LF)) extra++;
    }
    if (extra === 0) {
      yield chunk;
    } else {
      const out = new Uint8Array(chunk.length + extra);
      let n = 0;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (b === DOT && (i === 0 ? atLineStart : chunk[i - 1] === LF)) out[n++] = DOT;
        out[n++] = b;
      }
      yield out;
    }
    lastWasLf = chunk[chunk.length - 1] === LF;
    atLineStart = lastWasLf;
  }
  yield new TextEncoder().encode(lastWasLf ? '.\r\n' : '\r\n.\r\n');
}
