/**
 * One staging file under `<dataDir>/tmp/`: bytes in, encoded with storage/blob-codec.ts as they come, written in
 * batches of up to WRITE_BATCH encoded bytes (each file write is a thread-pool round trip: a 1 MB attachment took 15
 * of them, one per codec chunk), fsynced and closed by `finish()`. The file is opened as soon as the stage file is
 * made, while the first bytes are encoded. Also the synchronous variant for the rare blob that has to be
 * written inside a commit (`writeBlobFileSync`). Calls must not overlap (the blob writer serializes them).
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { BlobEncoder, encodeBlobSync } from '../blob-codec.ts';
import { concatBytes } from '../bytes.ts';

/** Encoded bytes gathered before one file write. */
const WRITE_BATCH = 512 * 1024;

export class StageFile {
  readonly path: string;
  #fh: FileHandle | null = null;
  #opening: Promise<FileHandle> | null = null;
  #position = 0;
  #encoder: BlobEncoder;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  constructor(path: string) {
    this.path = path;
    this.#encoder = new BlobEncoder({ write: (bytes) => this.#gather(bytes) });
    this.#opening = open(this.path, 'wx');
    this.#opening.catch(() => undefined); // reported by the first write (or ignored by abort)
  }

  /** The encoder's output: `bytes` is the encoder's own (a fresh array per chunk), kept until the next write. */
  async #gather(bytes: Uint8Array): Promise<void> {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.byteLength;
    if (this.#pendingBytes >= WRITE_BATCH) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pendingBytes === 0) return;
    const bytes = concatBytes(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#write(bytes);
  }

  async #handle(): Promise<FileHandle> {
    if (this.#fh) return this.#fh;
    this.#opening ??= open(this.path, 'wx');
    this.#fh = await this.#opening;
    return this.#fh;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    const f = await this.#handle();
    let off = 0;
    while (off < bytes.byteLength) {
      const { bytesWritten } = await f.write(bytes, off, bytes.byteLength - off, this.#position);
      off += bytesWritten;
      this.#position += bytesWritten;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#encoder.write(bytes);
  }

  /** Encoder footer, fsync, close. Returns the stored size. On failure the file is removed. */
  async finish(): Promise<number> {
    try {
      const { storedSize } = await this.#encoder.finish();
      await this.#flush();
      const f = await this.#handle();
      await f.sync();
      await this.#close();
      return storedSize;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async #close(): Promise<void> {
    const f = this.#fh ?? (this.#opening ? await this.#opening.catch(() => null) : null);
    this.#fh = null;
    this.#opening = null;
    if (f) await f.close().catch(() => undefined);
  }

  /** Closes and removes the file. Never throws. */
  async abort(): Promise<void> {
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#close();
    await unlink(this.path).catch(() => undefined);
  }
}

/** Encodes `parts` into a new file at `path` and fsyncs it, synchronously. Returns the stored size. */
export function writeBlobFileSync(path: string, parts: readonly Uint8Array[]): number {
  const encoded = encodeBlobSync(parts);
  const fd = openSync(path, 'wx');
  let stored = 0;
  try {
    for (const piece of encoded) {
      let off = 0;
      while (off < piece.byteLength) off += writeSync(fd, piece, off, piece.byteLength - off);
      stored += piece.byteLength;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return stored;
}
