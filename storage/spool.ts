/**
 * A spool for one incoming message that has to be read more than once (LMTP DATA delivered to several
 * recipients, each copy with its own Delivered-To header; an IMAP APPEND literal). Small messages stay in memory;
 * past `memoryLimit` bytes the spool moves to a file under its directory, so memory stays bounded whatever the
 * message size. File writes run behind the input (up to IN_FLIGHT bytes written while more arrives) and a reader
 * asks for the next piece before it hands out the current one, so neither waits on each thread-pool round trip.
 * Files are removed by `dispose()`; leftovers of a crash are removed the next time a spool is created there.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { concatBytes } from './bytes.ts';

export interface SpoolOptions {
  /** Directory for spool files (created if missing), e.g. `<dataDir>/spool`. */
  dir: string;
  /** Bytes kept in memory before moving to a file. Default 256 KiB. */
  memoryLimit?: number;
}

/**
 * Bytes per file write and per read back: each is a thread-pool round trip (~30 µs of CPU besides the copy), so a
 * 2 MB message costs 16 of them instead of 64 (the IMAP APPEND spool gathers writes the same way).
 */
const READ_SIZE = 256 * 1024;
const WRITE_BATCH = 256 * 1024;
/** Bytes handed to file writes not yet finished; a write past this waits (bounded memory, the socket held back). */
const IN_FLIGHT = 1024 * 1024;
const STALE_MS = 60 * 60 * 1000;
const cleaned = new Set<string>();

/** Creates the directory and removes stale files the first time a spool spills there in this process. */
async function prepareDir(dir: string): Promise<void> {
  if (cleaned.has(dir)) return;
  await mkdir(dir, { recursive: true });
  cleaned.add(dir);
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('spool-')) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (info && now - info.mtimeMs > STALE_MS) await rm(path, { force: true }).catch(() => {});
  }
}

async function writeAll(file: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset, position + offset);
    offset += bytesWritten;
  }
}

export class Spool {
  readonly #dir: string;
  readonly #memoryLimit: number;
  #chunks: Uint8Array[] = [];
  #pending = 0;
  #size = 0;
  #file: FileHandle | null = null;
  #path: string | null = null;
  #fileSize = 0;
  /** File writes started and not yet finished, and their bytes; the first failure, thrown by write() or finish(). */
  #writes = new Set<Promise<void>>();
  #writing = 0;
  #failure: { error: unknown } | null = null;
  #finished = false;
  #disposed = false;

  constructor(options: SpoolOptions) {
    this.#dir = options.dir;
    this.#memoryLimit = options.memoryLimit ?? 256 * 1024;
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  /** True once the spool spilled to a file. */
  get onDisk(): boolean {
    return this.#path !== null;
  }

  /** Adds bytes. The spool keeps `chunk` itself until it is flushed to the file: the caller must not change it. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#finished || this.#disposed) throw new Error('spool is finished');
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#pending += chunk.length;
    this.#size += chunk.length;
    if (this.#path === null && this.#size > this.#memoryLimit) {
      await prepareDir(this.#dir);
      this.#path = join(this.#dir, `spool-${randomUUID()}`);
      this.#file = await open(this.#path, 'w+', 0o600).catch(async (err: unknown) => {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
        await mkdir(this.#dir, { recursive: true }); // removed while the server ran
        return open(this.#path!, 'w+', 0o600);
      });
    }
    if (this.#file && this.#pending >= WRITE_BATCH) await this.#flush();
  }

  /** Starts writing what is pending (at its place in the file); waits only while IN_FLIGHT bytes are being written. */
  async #flush(): Promise<void> {
    this.#throwFailure();
    if (!this.#file || this.#pending === 0) return;
    const bytes = concatBytes(this.#chunks);
    this.#chunks = [];
    this.#pending = 0;
    const position = this.#fileSize;
    this.#fileSize += bytes.length;
    this.#writing += bytes.length;
    const write = writeAll(this.#file, bytes, position)
      .catch((error: unknown) => {
        this.#failure ??= { error };
      })
      .finally(() => {
        this.#writing -= bytes.length;
        this.#writes.delete(write);
      });
    this.#writes.add(write);
    while (this.#writing > IN_FLIGHT && this.#writes.size > 0) await Promise.race(this.#writes);
    this.#throwFailure();
  }

  #throwFailure(): void {
    if (this.#failure) throw this.#failure.error;
  }

  /** No more writes; the spool can now be read. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.#flush();
    while (this.#writes.size > 0) await Promise.all(this.#writes);
    this.#throwFailure();
  }

  /** Reads the spooled message from the start. Any number of readers, one after another or at once. */
  async *open(): AsyncIterable<Uint8Array> {
    if (!this.#finished) throw new Error('spool is not finished');
    if (this.#disposed) throw new Error('spool is disposed');
    if (!this.#file) {
      // the chunks as written (no copy into one array): the parser takes a message in any pieces
      yield* this.#chunks;
      return;
    }
    const file = this.#file;
    const size = this.#fileSize;
    const read = async (position: number): Promise<Uint8Array> => {
      const buffer = new Uint8Array(Math.min(READ_SIZE, size - position));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new Error('spool file is shorter than written');
      return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    };
    let ahead: Promise<Uint8Array> | null = null;
    try {
      for (let position = 0; position < size; ) {
        const chunk: Uint8Array = await (ahead ?? read(position));
        position += chunk.length;
        if (this.#disposed) throw new Error('spool is disposed');
        // From the second piece on, the next one is asked for before this one is handed out (read-ahead of one
        // piece): the first is all a header reader wants, and it stops there without leaving a read behind.
        ahead = position < size && position > chunk.length ? read(position) : null;
        yield chunk;
      }
    } finally {
      ahead?.catch(() => undefined); // a reader that stopped early leaves one read behind
    }
  }

  /** Drops the bytes (memory and file). Idempotent. Never throws. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#chunks = [];
    const file = this.#file;
    this.#file = null;
    await Promise.all(this.#writes);
    if (file) await file.close().catch(() => {});
    if (this.#path) await rm(this.#path, { force: true }).catch(() => {});
  }
}
