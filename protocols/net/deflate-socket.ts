/**
 * COMPRESS=DEFLATE (RFC 4978) underneath a protocol session: a Duplex over the connection's stream (plain TCP or
 * TLS) that inflates what the client sends and deflates what the server writes, raw deflate (RFC 1951) both ways.
 *
 * - Output: every write is deflated and followed by a sync flush (Z_SYNC_FLUSH), so each response reaches the
 *   client whole; the write completes once the compressed bytes were handed to the socket and it has drained.
 * - Input: the inflater's output is pushed to this stream's readable side; when the reader stops taking it (the
 *   session pauses this stream, or its buffer is full) the inflater is paused, its buffers fill (a chunk each) and the
 *   pipe from the socket pauses the socket. So a small compressed input that inflates to gigabytes (a deflate bomb)
 *   is inflated only as fast as the session consumes it, and the session's line and literal limits apply to the
 *   inflated bytes as to any others: memory stays bounded.
 * - A corrupt stream from the client destroys this stream with the inflater's error (the session ends).
 *
 * The session reads and writes this stream instead of the socket; closing it closes the socket.
 */
import { Duplex } from 'node:stream';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import type { DeflateRaw, InflateRaw } from 'node:zlib';

/** Inflated bytes held before the inflater is paused (beyond the session's own input buffer). */
const INFLATED_HIGH_WATER = 64 * 1024;
/**
 * Memory per compressed session, measured with 500 sessions after 100 KB of responses each: about 70 KB (130 KB with
 * zlib's defaults). The output side uses a 4 KiB window and memLevel 5 (a smaller window is always readable by the
 * client's inflater; responses compress nearly as well); the input side must take any window the client uses (up
 * to 32 KiB). Output pieces are small (one sync flush per write), so the output chunk is small too.
 */
const DEFLATE = { windowBits: 12, memLevel: 5, chunkSize: 4 * 1024 } as const;
const INFLATE_CHUNK = 8 * 1024;

export interface DeflateSocketOptions {
  /** zlib compression level for output (default 6). */
  level?: number;
  /** Bytes the client sent compressed before the switch (pipelined after the command): inflated first. */
  pending?: Uint8Array;
}

export class DeflateSocket extends Duplex {
  readonly #socket: Duplex;
  readonly #inflate: InflateRaw;
  readonly #deflate: DeflateRaw;
  /** Compressed bytes received and sent, for the session's log line. */
  bytesIn = 0;
  bytesOut = 0;

  constructor(socket: Duplex, options: DeflateSocketOptions = {}) {
    super({ readableHighWaterMark: INFLATED_HIGH_WATER, allowHalfOpen: false });
    this.#socket = socket;
    this.#inflate = createInflateRaw({ chunkSize: INFLATE_CHUNK });
    this.#deflate = createDeflateRaw({ level: options.level ?? 6, ...DEFLATE });

    this.#inflate.on('data', (chunk: Uint8Array) => {
      if (!this.push(chunk)) this.#inflate.pause();
    });
    this.#inflate.once('end', () => this.push(null));
    this.#inflate.on('error', (err: Error & { code?: string }) => {
      // the client closed the connection mid-stream (no final deflate block, as IMAP clients do): an ordinary end
      if (err.code === 'Z_BUF_ERROR' && socket.readableEnded) this.push(null);
      else this.destroy(err);
    });
    this.#deflate.on('data', (chunk: Uint8Array) => {
      this.bytesOut += chunk.length;
      if (!socket.destroyed && !socket.writableEnded) socket.write(chunk);
    });
    this.#deflate.on('error', (err: Error) => this.destroy(err));
    socket.on('data', this.#count);
    socket.once('close', this.#socketClosed);

    if (options.pending && options.pending.length > 0) {
      this.bytesIn += options.pending.length;
      this.#inflate.write(options.pending);
    }
    // backpressure from the inflater to the socket: the pipe pauses the socket while the inflater is full
    socket.pipe(this.#inflate);
    socket.resume();
  }

  readonly #count = (chunk: Uint8Array): void => {
    this.bytesIn += chunk.length;
  };

  readonly #socketClosed = (): void => {
    if (!this.destroyed) this.destroy();
  };

  override _read(): void {
    this.#inflate.resume();
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#deflate.write(chunk);
    this.#deflate.flush(constants.Z_SYNC_FLUSH, () => {
      const socket = this.#socket;
      if (!socket.writableNeedDrain || socket.destroyed) return callback();
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        callback();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#deflate.end(() => {
      this.#socket.end();
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const socket = this.#socket;
    socket.unpipe(this.#inflate);
    socket.off('data', this.#count);
    socket.off('close', this.#socketClosed);
    this.#inflate.destroy();
    this.#deflate.destroy();
    if (!socket.destroyed) socket.destroy();
    callback(error);
  }
}
