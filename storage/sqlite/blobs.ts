/**
 * Content-addressed, compressed, reference-counted blobs on disk: `<dataDir>/blobs/ab/cd/<sha256>`, encoded with
 * storage/blob-codec.ts, one row per distinct blob in the `blobs` table holding its reference count.
 *
 * Life of a blob:
 * 1. `stage()` hashes the bytes and holds them in memory (up to `memoryBytes` for all writers together). At finish,
 *    a blob that is already stored is done: no encoding, no file (de-duplication before any work). Otherwise, or
 *    once the memory budget is exceeded, the bytes stream into `<dataDir>/tmp/<uuid>.stage` (one codec chunk in
 *    memory), fsynced on finish. The staged copy (file or held bytes) is remembered by hash.
 * 2. The commit transaction of a message (`commitRefs`, called inside it) upserts the row; when the row is new and
 *    no file exists yet it renames the staged file into place (and fsyncs the directory), else the staged copy is
 *    dropped after commit.
 * 3. When a reference count reaches 0 (`releaseRefs`) the row is deleted and the file renamed into
 *    `<dataDir>/trash/` inside the transaction, then unlinked after commit. File moves happen while the SQLite write
 *    lock is held, so they cannot race a commit of the same hash in this or another process; a rollback undoes them.
 * 4. At open and in `collect()`: trash is finished (a file whose row is still live is put back), rows with no
 *    references are removed, files with no row are removed, and stale staging files are deleted.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { decodeRange } from '../blob-codec.ts';
import type { BlobSource } from '../blob-codec.ts';
import { StorageError } from '../ports.ts';
import type { BlobsPort, BlobWriter, IngestedMessage, StagedBlob } from '../ports.ts';
import type { Db } from './driver.ts';
import { num } from './common.ts';
import { fsyncWal } from './group-commit.ts';
import { StageFile, writeBlobFileSync } from './stage-file.ts';

const HASH_RE = /^[0-9a-f]{64}$/;

interface StagedEntry {
  hash: string;
  size: number;
  storedSize: number;
  /** The staging file, or null when the blob was already stored at finish() and its bytes are `held`. */
  path: string | null;
  held: Uint8Array[] | null;
  heldBytes: number;
  finished: number;
}

export interface BlobStoreOptions {
  dataDir: string;
  /** fsync directories after moving a blob into place. */
  durable: boolean;
  /** Staging files older than this (and not known to this process) are removed at open and by collect(). */
  stagingMaxAgeMs: number;
  /**
   * Bytes of blob data held in memory (all writers together) until the blob's hash is known: a blob already
   * stored is then never encoded or written again. What does not fit streams to a staging file.
   */
  memoryBytes: number;
  now: () => number;
}

function isHash(hash: unknown): hash is string {
  return typeof hash === 'string' && HASH_RE.test(hash);
}

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some platforms cannot fsync a directory; the rename itself is still atomic
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export class SqliteBlobs implements BlobsPort {
  #db: Db;
  #opts: BlobStoreOptions;
  readonly blobDir: string;
  readonly tmpDir: string;
  readonly trashDir: string;
  #staged = new Map<string, StagedEntry[]>();
  #heldBytes = 0;
  #background = new Set<Promise<unknown>>();

  constructor(db: Db, options: BlobStoreOptions) {
    this.#db = db;
    this.#opts = options;
    this.blobDir = join(options.dataDir, 'blobs');
    this.tmpDir = join(options.dataDir, 'tmp');
    this.trashDir = join(options.dataDir, 'trash');
  }

  /** Creates directories and repairs what an interrupted run left behind. */
  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.trashDir, { recursive: true });
    await this.#cleanStaging();
    await this.#finishTrash();
  }

  pathFor(hash: string): string {
    return join(this.blobDir, hash.slice(0, 2), hash.slice(2, 4), hash);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Staging
  // -------------------------------------------------------------------------------------------------------------

  stage(): BlobWriter {
    const hasher = createHash('sha256');
    /** Bytes held in memory while the blob may turn out to be stored already; null once streaming to a file. */
    let held: Uint8Array[] | null = [];
    let heldBytes = 0;
    let file: StageFile | null = null;
    let size = 0;
    let state: 'open' | 'finished' | 'aborted' = 'open';
    let entry: StagedEntry | null = null;
    let chain: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const p = chain.then(fn);
      chain = p.catch(() => undefined);
      return p;
    };
    /** From memory to a staging file: what was held is encoded first. */
    const spill = async (): Promise<StageFile> => {
      if (file) return file;
      file = new StageFile(join(this.tmpDir, `${randomUUID()}.stage`));
      const parts = held ?? [];
      held = null;
      try {
        for (const part of parts) await file.write(part);
      } finally {
        this.#release(heldBytes);
        heldBytes = 0;
      }
      return file;
    };
    const fail = async (): Promise<void> => {
      state = 'aborted';
      if (held) this.#release(heldBytes);
      held = null;
      heldBytes = 0;
      await file?.abort();
    };

    return {
      write: (chunk: Uint8Array) =>
        serial(async () => {
          if (state !== 'open') throw new Error(`blob writer is ${state}`);
          hasher.update(chunk);
          size += chunk.byteLength;
          try {
            if (held && this.#reserve(chunk.byteLength)) {
              held.push(chunk); // handed over (BlobWriter.write)
              heldBytes += chunk.byteLength;
              return;
            }
            await (await spill()).write(chunk);
          } catch (err) {
            await fail();
            throw err;
          }
        }),
      finish: () =>
        serial(async () => {
          if (state !== 'open') throw new Error(`blob writer is ${state}`);
          const hash = hasher.digest('hex');
          try {
            if (held && this.#isStored(hash)) {
              // Stored already: nothing to encode or write. The bytes stay in memory until the commit in case the
              // stored copy goes away meanwhile (then the commit writes them, see commitRefs).
              entry = { hash, size, storedSize: 0, path: null, held, heldBytes, finished: this.#opts.now() };
              held = null;
            } else {
              const f = await spill();
              const storedSize = await f.finish();
              entry = { hash, size, storedSize, path: f.path, held: null, heldBytes: 0, finished: this.#opts.now() };
            }
          } catch (err) {
            await fail();
            throw err;
          }
          this.#pushStaged(entry);
          state = 'finished';
          const staged: StagedBlob = { hash, size };
          return staged;
        }),
      abort: () =>
        serial(async () => {
          if (state === 'aborted') return;
          const wasFinished = state === 'finished';
          if (!wasFinished) return fail();
          state = 'aborted';
          // After finish: drop the staged copy only if no commit consumed it.
          if (entry && this.#removeStaged(entry)) await this.#drop(entry);
        }),
    };
  }

  /** Takes `bytes` from the in-memory staging budget; false when they do not fit (the blob goes to a file). */
  #reserve(bytes: number): boolean {
    if (this.#heldBytes + bytes > this.#opts.memoryBytes) return false;
    this.#heldBytes += bytes;
    return true;
  }

  #release(bytes: number): void {
    this.#heldBytes -= bytes;
  }

  /** Bytes of blobs held in memory by writers and staged entries (tests). */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  #isStored(hash: string): boolean {
    return this.#db.get('SELECT 1 AS x FROM blobs WHERE hash = ? AND refcount > 0', hash) !== undefined;
  }

  /** Forgets a staged copy nobody will commit: its memory back to the budget, or its file removed. */
  async #drop(e: StagedEntry): Promise<void> {
    if (e.held) {
      this.#release(e.heldBytes);
      e.held = null;
    }
    if (e.path) await unlink(e.path).catch(() => undefined);
  }

  #pushStaged(e: StagedEntry): void {
    const list = this.#staged.get(e.hash);
    if (list) list.push(e);
    else this.#staged.set(e.hash, [e]);
  }

  #popStaged(hash: string): StagedEntry | undefined {
    const list = this.#staged.get(hash);
    const e = list?.shift();
    if (list && list.length === 0) this.#staged.delete(hash);
    return e;
  }

  #removeStaged(e: StagedEntry): boolean {
    const list = this.#staged.get(e.hash);
    const i = list ? list.indexOf(e) : -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.#staged.delete(e.hash);
    return true;
  }

  async discard(staged: StagedBlob[]): Promise<void> {
    for (const s of staged) {
      const e = this.#popStaged(s.hash);
      if (e) await this.#drop(e);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------------------------------------------

  async *read(hash: string, start = 0, end = Infinity): AsyncIterable<Uint8Array> {
    if (!isHash(hash)) throw new StorageError('NONEXISTENT', `blob ${String(hash)} does not exist`);
    let fh: FileHandle;
    try {
      fh = await open(this.pathFor(hash), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new StorageError('NONEXISTENT', `blob ${hash} does not exist`);
      throw err;
    }
    try {
      const { size } = await fh.stat();
      const source: BlobSource = {
        size,
        read: async (offset, length) => {
          const buf = new Uint8Array(length);
          let got = 0;
          while (got < length) {
            const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return got === length ? buf : buf.subarray(0, got);
        },
      };
      yield* decodeRange(source, start, end);
    } finally {
      await fh.close();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reference counting (called inside the message transaction)
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Inside a transaction: takes one reference per distinct blob named by the message's segments for the message
   * row `messageId`, consuming the staged files listed in `message.blobs`.
   */
  commitRefs(messageId: number, message: IngestedMessage): void {
    const db = this.#db;
    const sizes = new Map<string, number>();
    for (const seg of message.content.segments) {
      if (seg.blob === undefined) continue;
      if (!isHash(seg.blob)) throw new StorageError('NONEXISTENT', `invalid blob hash ${String(seg.blob)}`);
      if (!sizes.has(seg.blob)) sizes.set(seg.blob, seg.length);
    }
    const consumed: StagedEntry[] = [];
    for (const s of message.blobs) {
      const e = this.#popStaged(s.hash);
      if (e) consumed.push(e);
    }
    if (consumed.length > 0) db.onRollback(() => consumed.forEach((e) => this.#pushStaged(e)));
    const moved = new Set<StagedEntry>();

    for (const [hash, segLength] of sizes) {
      const row = db.get<{ refcount: number }>('UPDATE blobs SET refcount = refcount + 1 WHERE hash = ? RETURNING refcount', hash);
      if (!row) {
        const final = this.pathFor(hash);
        const staged = consumed.find((e) => e.hash === hash && !moved.has(e));
        let storedSize: number;
        let size = staged?.size ?? segLength;
        if (existsSync(final)) {
          storedSize = statSync(final).size; // left by an interrupted commit: same hash, same bytes
        } else if (staged?.path) {
          const from = staged.path;
          mkdirSync(dirname(final), { recursive: true });
          renameSync(from, final);
          moved.add(staged);
          db.onRollback(() => renameSync(final, from));
          if (this.#opts.durable) fsyncDir(dirname(final));
          storedSize = staged.storedSize;
          size = staged.size;
        } else if (staged?.held) {
          // Stored at finish() and gone since (its last message deleted meanwhile): written now, under the lock.
          mkdirSync(dirname(final), { recursive: true });
          const tmp = join(this.tmpDir, `${randomUUID()}.stage`);
          try {
            storedSize = writeBlobFileSync(tmp, staged.held);
            renameSync(tmp, final);
          } catch (err) {
            rmSync(tmp, { force: true });
            throw err;
          }
          moved.add(staged);
          db.onRollback(() => rmSync(final, { force: true }));
          if (this.#opts.durable) fsyncDir(dirname(final));
          size = staged.size;
        } else {
          throw new StorageError('NONEXISTENT', `blob ${hash} is neither stored nor staged`);
        }
        db.run('INSERT INTO blobs (hash, size, stored_size, refcount, created) VALUES (?, ?, ?, 1, ?)', hash, size, storedSize, this.#opts.now());
      }
      db.run('INSERT INTO message_blobs (message_id, hash) VALUES (?, ?)', messageId, hash);
    }

    // Consumed copies leave the staging area when the commit stands: files unlinked, held memory released.
    if (consumed.length > 0) {
      db.afterCommit(() => {
        for (const e of consumed) {
          if (e.held) this.#release(e.heldBytes);
          e.held = null;
          if (e.path && !moved.has(e)) this.#unlinkLater(e.path);
        }
      });
    }
  }

  /** Inside a transaction: the message row `toId` gets the same blob references as `fromId` (copy). */
  copyRefs(fromId: number, toId: number): void {
    const db = this.#db;
    const hashes = db.all<{ hash: string }>('SELECT hash FROM message_blobs WHERE message_id = ?', fromId);
    for (const { hash } of hashes) {
      db.run('INSERT INTO message_blobs (message_id, hash) VALUES (?, ?)', toId, hash);
      db.run('UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?', hash);
    }
  }

  /**
   * Inside a transaction: drops `n` references from each blob; blobs reaching 0 lose their row and their file is
   * moved to trash (unlinked after commit, moved back on rollback).
   */
  releaseRefs(counts: Iterable<{ hash: string; n: number }>): void {
    const db = this.#db;
    for (const { hash, n } of counts) {
      const row = db.get<{ refcount: number }>('UPDATE blobs SET refcount = refcount - ? WHERE hash = ? RETURNING refcount', n, hash);
      if (row && num(row.refcount) <= 0) {
        db.run('DELETE FROM blobs WHERE hash = ?', hash);
        this.#trash(hash);
      }
    }
  }

  /** Counts of blob references held by the messages matched by `where` (SQL over messages aliased `m`). */
  refsOf(where: string, ...params: Array<number | string>): Array<{ hash: string; n: number }> {
    return this.#db.all<{ hash: string; n: number }>(
      `SELECT mb.hash AS hash, count(*) AS n FROM message_blobs mb JOIN messages m ON m.id = mb.message_id WHERE ${where} GROUP BY mb.hash`,
      ...params,
    );
  }

  #trash(hash: string): void {
    const db = this.#db;
    const final = this.pathFor(hash);
    const trashed = join(this.trashDir, `${hash}.${randomUUID()}`);
    try {
      renameSync(final, trashed);
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw err;
    }
    db.onRollback(() => renameSync(trashed, final));
    // not before the release is durable: a power cut could undo it (an expunge commits without an fsync of its own)
    db.afterDurable(() => this.#unlinkLater(trashed));
  }

  #unlinkLater(path: string): void {
    const p = unlink(path)
      .catch(() => undefined)
      .finally(() => this.#background.delete(p));
    this.#background.add(p);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Maintenance
  // -------------------------------------------------------------------------------------------------------------

  async #cleanStaging(): Promise<number> {
    const known = new Set<string>();
    for (const list of this.#staged.values()) for (const e of list) if (e.path) known.add(e.path);
    const cutoff = this.#opts.now() - this.#opts.stagingMaxAgeMs;
    let removed = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      if (known.has(path)) continue;
      try {
        const st = await stat(path);
        if (st.mtimeMs > cutoff && this.#opts.stagingMaxAgeMs > 0) continue;
        await unlink(path);
        removed++;
      } catch {
        // gone meanwhile
      }
    }
    return removed;
  }

  /** Under the write lock: trash files whose blob row is live and whose file is missing go back; the rest go. */
  async #finishTrash(): Promise<void> {
    const names = await readdir(this.trashDir).catch(() => [] as string[]);
    if (names.length === 0) return;
    const unlinkNow: string[] = [];
    this.#db.transaction(() => {
      for (const name of names) {
        const path = join(this.trashDir, name);
        const hash = name.slice(0, 64);
        if (isHash(hash) && name[64] === '.') {
          const live = this.#db.get('SELECT 1 AS x FROM blobs WHERE hash = ? AND refcount > 0', hash);
          const final = this.pathFor(hash);
          if (live && !existsSync(final) && existsSync(path)) {
            mkdirSync(dirname(final), { recursive: true });
            renameSync(path, final);
            continue;
          }
        }
        unlinkNow.push(path);
      }
    });
    // a release committed by another process without an fsync of its own (an expunge) is durable before its file goes
    if (unlinkNow.length > 0 && this.#opts.durable) await fsyncWal(this.#db.path);
    for (const path of unlinkNow) await unlink(path).catch(() => undefined);
  }

  async #walkBlobFiles(): Promise<string[]> {
    const out: string[] = [];
    for (const a of await readdir(this.blobDir).catch(() => [] as string[])) {
      const da = join(this.blobDir, a);
      for (const b of await readdir(da).catch(() => [] as string[])) {
        const db = join(da, b);
        for (const name of await readdir(db).catch(() => [] as string[])) {
          if (isHash(name) && name.startsWith(a + b)) out.push(name);
        }
      }
    }
    return out;
  }

  async collect(): Promise<number> {
    const db = this.#db;
    let freed = 0;
    db.transaction(() => {
      const zero = db.all<{ hash: string }>('SELECT hash FROM blobs WHERE refcount <= 0');
      for (const { hash } of zero) {
        db.run('DELETE FROM blobs WHERE hash = ?', hash);
        this.#trash(hash);
        freed++;
      }
    });
    const files = await this.#walkBlobFiles();
    const candidates = files.filter((hash) => !db.get('SELECT 1 AS x FROM blobs WHERE hash = ?', hash));
    if (candidates.length > 0) {
      db.transaction(() => {
        for (const hash of candidates) {
          // Re-check under the write lock: a commit may have adopted the file meanwhile.
          if (db.get('SELECT 1 AS x FROM blobs WHERE hash = ?', hash)) continue;
          this.#trash(hash);
          freed++;
        }
      });
    }
    freed += await this.#cleanStaging();
    await this.#finishTrash();
    await this.settle();
    return freed;
  }

  async stats(): Promise<{ count: number; size: number; storedSize: number }> {
    const r = this.#db.get<{ count: number; size: number | null; stored: number | null }>(
      'SELECT count(*) AS count, sum(size) AS size, sum(stored_size) AS stored FROM blobs WHERE refcount > 0',
    );
    return { count: num(r?.count ?? 0), size: num(r?.size ?? 0), storedSize: num(r?.stored ?? 0) };
  }

  /** Waits for after-commit unlinks still in flight. */
  async settle(): Promise<void> {
    while (this.#background.size > 0) await Promise.all([...this.#background]);
  }

  /** Drops this process's staged files that were never committed (on close). */
  async close(): Promise<void> {
    await this.settle();
    const all = [...this.#staged.values()].flat();
    this.#staged.clear();
    for (const e of all) await this.#drop(e);
  }
}
