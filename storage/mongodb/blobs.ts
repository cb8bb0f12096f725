/**
 * Content-addressed, compressed, reference-counted blobs on MongoDB: one `blobs` document per blob, its bytes encoded
 * with storage/blob-codec.ts (64 KiB chunks, each compressed, then an index and a footer) and cut into `blobpieces`
 * of BLOB_PIECE_SIZE bytes, written once and never updated.
 *
 * Life of a blob:
 * 1. `stage()` inserts a `blobs` document in state 'staged' with a null hash, then the pieces as the encoder fills
 *    them; `finish()` records size, stored size and piece count. The hash is not claimed yet: a staged blob is
 *    found only by its `_id`, which this process remembers by hash until a commit or `discard` takes it.
 * 2. A message commit (`commitRefs`) takes one reference per distinct blob its segments name: `$inc refs` on the
 *    live blob with that hash, dropping the staged copy; when there is none, the staged copy is promoted (hash set,
 *    state 'live', refs 1). When a unique-index race is lost (duplicate key) the winner's blob gets the reference.
 * 3. Releasing references (expunge, delete) only decrements. A blob with no reference is freed by `collect`, which
 *    deletes the document only while its count is still 0 (so a commit that revived it keeps it), then its pieces.
 *
 * A byte range is decoded from the pieces that hold the chunks it overlaps (`decodeRange`), never the whole blob.
 */
import { createHash } from 'node:crypto';
import { Binary, ObjectId } from 'mongodb';
import { BlobEncoder, decodeRange } from '../blob-codec.ts';
import type { BlobSource } from '../blob-codec.ts';
import { concatBytes } from '../bytes.ts';
import { StorageError } from '../ports.ts';
import { StagedByHash, serialCalls } from '../blob-staging.ts';
import type { BlobsPort, BlobWriter, MessageContent, StagedBlob } from '../ports.ts';
import type { BlobDoc, MongoCollections } from './collections.ts';
import { isDuplicateKey, mongoCall } from './errors.ts';
import { bytesOf } from './bytes.ts';
import { KeyedSerial } from './serial.ts';

/** Bytes of encoded blob per `blobpieces` document (the last piece of a blob may be shorter). A format constant. */
export const BLOB_PIECE_SIZE = 255 * 1024;

/** Staged blobs older than this (and not held by this process) are removed by `collect` by default. */
export const DEFAULT_STAGED_MAX_AGE_MS = 60 * 60 * 1000;

const HASH_RE = /^[0-9a-f]{64}$/;

/** Blobs whose orphaned pieces `collect` deletes per command. */
const ORPHAN_BATCH = 1000;

export function isBlobHash(hash: unknown): hash is string {
  return typeof hash === 'string' && HASH_RE.test(hash);
}

interface StagedEntry {
  id: ObjectId;
  hash: string;
}

export interface MongoBlobsOptions {
  now?: () => number;
  /** How old an uncommitted staged blob must be before `collect` removes it (ms). */
  stagedMaxAgeMs?: number;
  /** Told how many pieces each fetch of stored bytes read (tests: a range read fetches only its pieces). */
  onPiecesRead?(blob: ObjectId, pieces: number): void;
}

/** Reference counts to take or drop, by hash. */
export type BlobRefCounts = ReadonlyMap<string, number>;

/** The distinct blob hashes a message's segments name (each one reference). NONEXISTENT for a malformed hash. */
export function blobHashes(content: MessageContent): string[] {
  const out = new Set<string>();
  for (const seg of content.segments) {
    if (seg.blob === undefined) continue;
    if (!isBlobHash(seg.blob)) throw new StorageError('NONEXISTENT', `invalid blob hash ${String(seg.blob)}`);
    out.add(seg.blob);
  }
  return [...out];
}

/**
 * Counts the references these messages' blob lists hold, one per message and distinct hash (a copy of several
 * messages takes one reference per message), adding to `into` when given.
 */
export function countRefs(lists: Iterable<readonly string[] | undefined>, into: Map<string, number> = new Map()): Map<string, number> {
  for (const list of lists) for (const hash of new Set(list ?? [])) into.set(hash, (into.get(hash) ?? 0) + 1);
  return into;
}

/** Adds (`sign` 1) or drops (-1) references on live blobs: `counts` is hash → references. */
export async function incBlobRefs(c: MongoCollections, counts: BlobRefCounts, sign: 1 | -1): Promise<void> {
  if (counts.size === 0) return;
  await c.blobs.bulkWrite(
    [...counts].map(([hash, n]) => ({ updateOne: { filter: { hash, state: 'live' as const }, update: { $inc: { refs: sign * n } } } })),
    { ordered: false },
  );
}

export class MongoBlobs implements BlobsPort {
  readonly #c: MongoCollections;
  readonly #now: () => number;
  readonly #stagedMaxAgeMs: number;
  readonly #onPiecesRead: MongoBlobsOptions['onPiecesRead'];
  /** Staged blobs this process wrote and nobody committed or discarded yet, by hash. */
  readonly #staged = new StagedByHash<StagedEntry>();
  /** Blobs this process is writing now (hex ids): `collect` leaves them however long the upload takes. */
  readonly #writing = new Set<string>();
  /** References on one hash taken one at a time in this process (serial.ts): two commits of new content promote one blob. */
  readonly #taking = new KeyedSerial();

  constructor(c: MongoCollections, options: MongoBlobsOptions = {}) {
    this.#c = c;
    this.#now = options.now ?? Date.now;
    this.#stagedMaxAgeMs = options.stagedMaxAgeMs ?? DEFAULT_STAGED_MAX_AGE_MS;
    this.#onPiecesRead = options.onPiecesRead;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Staging
  // -------------------------------------------------------------------------------------------------------------

  stage(): BlobWriter {
    const c = this.#c;
    const id = new ObjectId();
    this.#writing.add(id.toHexString());
    const done = (): void => void this.#writing.delete(id.toHexString());
    const hasher = createHash('sha256');
    let size = 0;
    let inserted = false;
    let pieces = 0;
    const piece = new Uint8Array(BLOB_PIECE_SIZE);
    let filled = 0;
    let state: 'open' | 'finished' | 'aborted' = 'open';
    let entry: StagedEntry | null = null;
    const serial = serialCalls();
    // the document comes before any piece, so a piece without its document is a leftover `collect` may remove
    const insertDoc = async (): Promise<void> => {
      if (inserted) return;
      const doc: BlobDoc = { _id: id, hash: null, state: 'staged', size: 0, storedSize: 0, pieces: 0, refs: 0, created: this.#now() };
      await c.blobs.insertOne(doc);
      inserted = true;
    };
    const flushPiece = async (): Promise<void> => {
      if (filled === 0) return;
      await insertDoc();
      await c.blobPieces.insertOne({ _id: new ObjectId(), blob: id, n: pieces, data: new Binary(piece.slice(0, filled)) });
      pieces++;
      filled = 0;
    };
    const encoder = new BlobEncoder({
      write: async (bytes) => {
        let offset = 0;
        while (offset < bytes.byteLength) {
          const take = Math.min(BLOB_PIECE_SIZE - filled, bytes.byteLength - offset);
          piece.set(bytes.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (filled === BLOB_PIECE_SIZE) await flushPiece();
        }
      },
    });
    const fail = async (): Promise<void> => {
      state = 'aborted';
      done();
      if (inserted) await this.#drop(id).catch(() => undefined); // else collect removes it later
    };
    return {
      write: (chunk: Uint8Array) =>
        serial(async () => {
          if (state !== 'open') throw new Error(`blob writer is ${state}`);
          hasher.update(chunk);
          size += chunk.byteLength;
          try {
            await encoder.write(chunk);
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
            const encoded = await encoder.finish();
            await flushPiece();
            await insertDoc();
            await c.blobs.updateOne({ _id: id }, { $set: { size: encoded.rawSize, storedSize: encoded.storedSize, pieces } });
          } catch (err) {
            await fail();
            throw err;
          }
          entry = { id, hash };
          this.#staged.push(entry);
          done();
          state = 'finished';
          const staged: StagedBlob = { hash, size };
          return staged;
        }),
      abort: () =>
        serial(async () => {
          if (state === 'aborted') return;
          if (state === 'open') return fail();
          state = 'aborted';
          // after finish: only if no commit or discard took it
          if (entry && this.#staged.remove(entry)) await this.#drop(entry.id);
        }),
    };
  }

  /** Removes a blob that is still staged, with its pieces (a promoted one is left alone). */
  async #drop(id: ObjectId): Promise<boolean> {
    const r = await this.#c.blobs.deleteOne({ _id: id, state: 'staged' });
    if (r.deletedCount > 0) await this.#c.blobPieces.deleteMany({ blob: id });
    return r.deletedCount > 0;
  }

  discard(staged: StagedBlob[]): Promise<void> {
    return mongoCall(async () => {
      for (const s of staged) {
        const e = this.#staged.pop(s.hash);
        if (e) await this.#drop(e.id);
      }
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // References (the message writes call these)
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Takes one reference per distinct blob the message's segments name, consuming the staged blobs listed in `staged`;
   * returns those hashes (MessageDoc.blobs). All or nothing: when a blob is neither stored nor staged (NONEXISTENT)
   * or a write fails, the references taken are given back and the staged blobs stay staged.
   */
  async commitRefs(content: MessageContent, staged: readonly StagedBlob[]): Promise<string[]> {
    const hashes = blobHashes(content);
    const consumed: StagedEntry[] = [];
    for (const s of staged) {
      const e = this.#staged.pop(s.hash);
      if (e) consumed.push(e);
    }
    const promoted = new Set<StagedEntry>();
    const taken: string[] = [];
    try {
      for (const hash of hashes) {
        const own = consumed.find((e) => e.hash === hash);
        if (await this.#taking.run(hash, () => this.#take(hash, own))) promoted.add(own!);
        taken.push(hash);
      }
    } catch (err) {
      await this.releaseRefs(countRefs([taken])).catch(() => undefined);
      for (const e of consumed) if (!promoted.has(e)) this.#staged.push(e);
      throw err;
    }
    // staged copies not promoted (the hash was live already, or not named by a segment): documents and pieces go
    for (const e of consumed) if (!promoted.has(e)) await this.#drop(e.id);
    return hashes;
  }

  /**
   * One reference on the blob with this hash: the live one when there is one, else `own` promoted. True when `own`
   * was promoted (it is the blob now), false when a live blob took the reference. NONEXISTENT with neither.
   */
  async #take(hash: string, own: StagedEntry | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await this.#c.blobs.updateOne({ hash, state: 'live' }, { $inc: { refs: 1 } });
      if (r.matchedCount > 0) return false;
      if (!own) break;
      try {
        const p = await this.#c.blobs.updateOne({ _id: own.id, state: 'staged' }, { $set: { hash, state: 'live', refs: 1 } });
        if (p.matchedCount === 0) break; // collected meanwhile (older than the staging limit)
        return true;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err; // another writer promoted the same content first: take a reference on it
      }
    }
    throw new StorageError('NONEXISTENT', `blob ${hash} is neither stored nor staged`);
  }

  /** Takes more references on stored blobs (a copy of messages naming them). */
  async addRefs(counts: BlobRefCounts): Promise<void> {
    await incBlobRefs(this.#c, counts, 1);
  }

  /** Drops references (expunge, delete); a blob left with none is freed by `collect`. */
  async releaseRefs(counts: BlobRefCounts): Promise<void> {
    await incBlobRefs(this.#c, counts, -1);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------------------------------------------

  async *read(hash: string, start = 0, end = Infinity): AsyncIterable<Uint8Array> {
    if (!isBlobHash(hash)) throw new StorageError('NONEXISTENT', `blob ${String(hash)} does not exist`);
    const doc = await mongoCall(() => this.#c.blobs.findOne({ hash, state: 'live', refs: { $gt: 0 } }, { projection: { _id: 1, storedSize: 1 } }));
    if (!doc) throw new StorageError('NONEXISTENT', `blob ${hash} does not exist`);
    yield* decodeRange(this.#source(doc._id, doc.storedSize), start, end);
  }

  /** The stored bytes of a blob: each read fetches the pieces it overlaps that it does not hold (the footer and index are usually in the last piece). */
  #source(blob: ObjectId, size: number): BlobSource {
    const kept = new Map<number, Uint8Array>();
    const final = Math.floor((size - 1) / BLOB_PIECE_SIZE);
    const fetch = async (first: number, last: number): Promise<void> => {
      const missing: number[] = [];
      for (let n = first; n <= last; n++) if (!kept.has(n)) missing.push(n);
      if (missing.length === 0) return;
      const docs = await mongoCall(() =>
        this.#c.blobPieces.find({ blob, n: { $gte: missing[0]!, $lte: missing[missing.length - 1]! } }, { projection: { n: 1, data: 1 } }).sort({ n: 1 }).toArray(),
      );
      this.#onPiecesRead?.(blob, docs.length);
      // keep what this read needs and the last piece (the index and footer, and the last chunks); the rest goes once
      // more than three pieces are held
      if (kept.size + docs.length > 3) for (const n of kept.keys()) if ((n < first || n > last) && n !== final) kept.delete(n);
      for (const d of docs) kept.set(d.n, bytesOf(d.data));
    };
    return {
      size,
      read: async (offset, length) => {
        const end = Math.min(size, offset + length);
        if (!(end > offset)) return new Uint8Array(0);
        const first = Math.floor(offset / BLOB_PIECE_SIZE);
        const last = Math.floor((end - 1) / BLOB_PIECE_SIZE);
        await fetch(first, last);
        const parts: Uint8Array[] = [];
        for (let n = first; n <= last; n++) {
          const bytes = kept.get(n);
          if (!bytes) break; // missing: the codec reports a short read
          const base = n * BLOB_PIECE_SIZE;
          parts.push(bytes.subarray(Math.max(0, offset - base), Math.min(bytes.byteLength, end - base)));
        }
        return parts.length === 1 ? parts[0]!.slice() : concatBytes(parts);
      },
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Maintenance
  // -------------------------------------------------------------------------------------------------------------

  collect(): Promise<number> {
    return mongoCall(async () => {
      const c = this.#c;
      const held = [...this.#staged.all().map((e) => e.id), ...[...this.#writing].map((id) => ObjectId.createFromHexString(id))];
      const dead = await c.blobs
        .find({ $or: [{ state: 'live', refs: { $lte: 0 } }, { state: 'staged', created: { $lt: this.#now() - this.#stagedMaxAgeMs }, _id: { $nin: held } }] }, { projection: { _id: 1, state: 1 } })
        .toArray();
      let freed = 0;
      for (const d of dead) {
        // only while still unreferenced: a commit that took a reference meanwhile keeps it
        const filter = d.state === 'live' ? { _id: d._id, state: 'live' as const, refs: { $lte: 0 } } : { _id: d._id, state: 'staged' as const };
        const r = await c.blobs.deleteOne(filter);
        if (r.deletedCount === 0) continue;
        await c.blobPieces.deleteMany({ blob: d._id });
        freed++;
      }
      // pieces whose document is gone (a crash between the two deletes above); streamed, as the owners of all pieces
      // may be more than one reply (`distinct`) or one `$in` can hold
      const orphans = c.blobPieces.aggregate<{ _id: ObjectId }>([
        { $group: { _id: '$blob' } },
        { $lookup: { from: c.blobs.collectionName, localField: '_id', foreignField: '_id', as: 'doc' } },
        { $match: { doc: { $size: 0 } } },
        { $project: { _id: 1 } },
      ]);
      const batch: ObjectId[] = [];
      for await (const o of orphans) {
        batch.push(o._id);
        if (batch.length === ORPHAN_BATCH) await c.blobPieces.deleteMany({ blob: { $in: batch.splice(0) } });
      }
      if (batch.length > 0) await c.blobPieces.deleteMany({ blob: { $in: batch } });
      return freed;
    });
  }

  stats(): Promise<{ count: number; size: number; storedSize: number }> {
    return mongoCall(async () => {
      const [r] = await this.#c.blobs
        .aggregate<{ count: number; size: number; storedSize: number }>([
          { $match: { state: 'live', refs: { $gt: 0 } } },
          { $group: { _id: null, count: { $sum: 1 }, size: { $sum: '$size' }, storedSize: { $sum: '$storedSize' } } },
        ])
        .toArray();
      return { count: r?.count ?? 0, size: r?.size ?? 0, storedSize: r?.storedSize ?? 0 };
    });
  }

  /** Drops this process's staged blobs that were never committed (on close). */
  async close(): Promise<void> {
    const all = this.#staged.all();
    this.#staged.clear();
    for (const e of all) await this.#drop(e.id).catch(() => undefined);
  }
}
