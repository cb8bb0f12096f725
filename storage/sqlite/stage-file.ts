/**
 * One staging file under `<dataDir>/tmp/`: bytes in, encoded with storage/blob-codec.ts as they come (one codec
 * chunk in memory), fsynced and closed by `finish()`. Also the synchronous variant for the rare blob that has to be
 * written inside a commit (`writeBlobFileSync`). Calls must not overlap (the blob writer serializes them).
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { BlobEncoder, encodeBlobSync } from '../blob-codec.ts';

export class StageFile {
  readonly path: string;
  #fh: FileHandle | null = null;
  #opening: Promise<FileHandle> | null = null;
  #position = 0;
  #encoder: BlobEncoder;

  constructor(path: string) {
    this.path = path;
    this.#encoder = new BlobEncoder({ write: (bytes) => this.#write(bytes) });
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
