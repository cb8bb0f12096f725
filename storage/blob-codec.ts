/**
 * Compressed blob framing shared by every backend (files on disk for SQLite, GridFS for MongoDB).
 *
 * A blob is split into chunks of `chunkSize` input bytes (64 KiB by default; the last one may be shorter), each
 * compressed independently or kept as is when compression does not shrink it. After the chunks comes an index and
 * a fixed footer, so a reader can find any chunk without touching the others:
 *
 * ```
 * chunk 0 … chunk n-1
 * index:  n × u32 LE   bits 0-29 = stored length of chunk i, bit 30 = 1 when brotli (version 2), bit 31 = 1 when
 *                      stored raw, both bits: base64 lines decoded (version 3, storage/blob-base64.ts); neither
 *                      bit: raw deflate (RFC 1951)
 * footer: u32 version | u32 chunkSize | u32 n | u32 rawSize low | u32 rawSize high | "WDBZ"   (24 bytes)
 * ```
 *
 * Version 1 (deflate or raw chunks, bits 0-30 = length) is still read; new blobs are written as version 2 with
 * brotli at quality 1: on attachments (base64 of already-compressed data) it reaches deflate's ratio (0.76) at a
 * fifth of its CPU, and on text nearly so (0.22 against 0.18) at a seventh; chunks that do not shrink (binary
 * parts of compressed data) are stored raw. Chunks of base64 in regular lines (nearly every attachment) are stored
 * decoded instead (0.73 of their size, a sixth of brotli's CPU, on the calling thread); a blob holding such a chunk
 * is written as version 3, any other as version 2.
 *
 * `decodeRange(source, start, end)` reads the footer and index, then only the chunks overlapping [start, end).
 * Compression uses async `node:zlib` so the event loop stays free.
 */
import { brotliCompress, brotliCompressSync, brotliDecompress, constants, deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib';
import type { ZlibOptions } from 'node:zlib';
import { decodeBase64Lines, encodeBase64Lines } from './blob-base64.ts';
import { concatBytes } from './bytes.ts';

export const BLOB_CHUNK_SIZE = 64 * 1024;
const FOOTER_SIZE = 24;
const MAGIC = [0x57, 0x44, 0x42, 0x5a]; // "WDBZ"
const VERSION = 2;
/** The version of a blob with base64-lines chunks. */
const VERSION_BASE64 = 3;
const RAW_FLAG = 0x80000000;
const BROTLI_FLAG = 0x40000000;
const BASE64_FLAGS = RAW_FLAG | BROTLI_FLAG;
/** Largest chunk size version 2 can index (30 bits of length). */
const MAX_CHUNK_SIZE = BROTLI_FLAG - 1;

function brotliOptions(size: number) {
  return {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_SIZE_HINT]: size,
      [constants.BROTLI_PARAM_LGWIN]: Math.max(16, Math.min(24, Math.ceil(Math.log2(size + 1)))),
    },
  };
}

function toBytes(out: Uint8Array): Uint8Array {
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function brotliAsync(data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    brotliCompress(data, brotliOptions(data.byteLength), (err, out) => (err ? reject(err) : resolve(toBytes(out))));
  });
}

function unbrotliAsync(data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    brotliDecompress(data, (err, out) => (err ? reject(err) : resolve(toBytes(out))));
  });
}

/** One chunk as stored, with its index entry: brotli when that shrinks it, else raw. */
function storedChunk(raw: Uint8Array, compressed: Uint8Array): { stored: Uint8Array; entry: number } {
  if (compressed.byteLength < raw.byteLength) return { stored: compressed, entry: (compressed.byteLength | BROTLI_FLAG) >>> 0 };
  return { stored: raw.slice(), entry: (raw.byteLength | RAW_FLAG) >>> 0 };
}

/** A chunk of base64 lines, stored decoded; null when it is not one (then it is compressed the general way). */
function base64Chunk(raw: Uint8Array): { stored: Uint8Array; entry: number } | null {
  const stored = encodeBase64Lines(raw);
  return stored && stored.byteLength < raw.byteLength ? { stored, entry: (stored.byteLength | BASE64_FLAGS) >>> 0 } : null;
}

function footer(index: readonly number[], chunkSize: number, rawSize: number): Uint8Array {
  const n = index.length;
  const version = index.some((entry) => (entry & BASE64_FLAGS) === BASE64_FLAGS) ? VERSION_BASE64 : VERSION;
  const tail = new Uint8Array(n * 4 + FOOTER_SIZE);
  const view = new DataView(tail.buffer);
  for (let i = 0; i < n; i++) view.setUint32(i * 4, index[i]!, true);
  const f = n * 4;
  view.setUint32(f, version, true);
  view.setUint32(f + 4, chunkSize, true);
  view.setUint32(f + 8, n, true);
  view.setUint32(f + 12, rawSize % 0x100000000, true);
  view.setUint32(f + 16, Math.floor(rawSize / 0x100000000), true);
  tail.set(MAGIC, f + 20);
  return tail;
}

/**
 * The whole encoded blob of `parts` (its bytes in order), computed synchronously: for the rare case where a blob
 * must be written inside a transaction (storage/sqlite/blobs.ts). Same bytes as the streaming encoder.
 */
export function encodeBlobSync(parts: readonly Uint8Array[], options: { chunkSize?: number } = {}): Uint8Array[] {
  const chunkSize = options.chunkSize ?? BLOB_CHUNK_SIZE;
  const data = concatBytes(parts);
  const out: Uint8Array[] = [];
  const index: number[] = [];
  for (let offset = 0; offset < data.byteLength; offset += chunkSize) {
    const raw = data.subarray(offset, offset + chunkSize);
    const { stored, entry } = base64Chunk(raw) ?? storedChunk(raw, toBytes(brotliCompressSync(raw, brotliOptions(raw.byteLength))));
    out.push(stored);
    index.push(entry);
  }
  out.push(footer(index, chunkSize, data.byteLength));
  return out;
}

function deflateAsync(data: Uint8Array, options: ZlibOptions = {}): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    deflateRaw(data, options, (err, out) => (err ? reject(err) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))));
  });
}

function inflateAsync(data: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    inflateRaw(data, (err, out) => (err ? reject(err) : resolve(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))));
  });
}

/**
 * Up to this many bytes, deflateIfSmaller compresses on the calling thread: node:zlib's async call costs about
 * 150 µs of CPU on top of the compression itself (a stream and a thread-pool round trip), more than deflating
 * 16 KB takes, while the event loop is held for well under a millisecond.
 */
const SYNC_DEFLATE_LIMIT = 64 * 1024;
/** inflate() on the calling thread stops past this output size and goes to the thread pool. */
const SYNC_INFLATE_OUTPUT_LIMIT = 1024 * 1024;

/**
 * zlib level of deflateIfSmaller. Measured on the bench corpus's inline bytes (8 KB a message: headers, text parts,
 * boundaries): level 3 takes 0.072 ms a message and keeps 0.209 of the bytes, level 6 (zlib's default) 0.115 ms for
 * 0.198 (90 bytes more a message, well under 0.001 of stored/raw on the mixed corpus), level 1 0.080 ms for 0.259.
 */
const INLINE_DEFLATE = { level: 3 } as const;

/** Deflates `data` when that makes it smaller. Used for single small values (inline message bytes). */
export async function deflateIfSmaller(data: Uint8Array): Promise<{ data: Uint8Array; deflated: boolean }> {
  if (data.byteLength < 64) return { data, deflated: false };
  const out = data.byteLength <= SYNC_DEFLATE_LIMIT ? toBytes(deflateRawSync(data, INLINE_DEFLATE)) : await deflateAsync(data, INLINE_DEFLATE);
  return out.byteLength < data.byteLength ? { data: out, deflated: true } : { data, deflated: false };
}

/** Inflates what deflateIfSmaller made: on the calling thread when small both ways (see SYNC_DEFLATE_LIMIT). */
export async function inflate(data: Uint8Array): Promise<Uint8Array> {
  if (data.byteLength <= SYNC_DEFLATE_LIMIT) {
    try {
      return toBytes(inflateRawSync(data, { maxOutputLength: SYNC_INFLATE_OUTPUT_LIMIT }));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err; // larger than the limit: inflated on the thread pool instead
    }
  }
  return inflateAsync(data);
}

export interface BlobSink {
  write(bytes: Uint8Array): Promise<void>;
}

export interface EncodeResult {
  /** Original (decoded) size. */
  rawSize: number;
  /** Bytes written to the sink, index and footer included. */
  storedSize: number;
  chunks: number;
}

/** Streaming encoder: holds at most one chunk of input in memory. Calls must not overlap (await each one). */
export class BlobEncoder {
  #sink: BlobSink;
  #chunkSize: number;
  #buffer: Uint8Array;
  #filled = 0;
  #index: number[] = [];
  #rawSize = 0;
  #storedSize = 0;
  #finished = false;

  constructor(sink: BlobSink, options: { chunkSize?: number } = {}) {
    this.#sink = sink;
    this.#chunkSize = options.chunkSize ?? BLOB_CHUNK_SIZE;
    if (!(this.#chunkSize > 0 && this.#chunkSize <= MAX_CHUNK_SIZE)) throw new RangeError('invalid chunk size');
    this.#buffer = new Uint8Array(this.#chunkSize);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#finished) throw new Error('BlobEncoder: write after finish');
    let offset = 0;
    while (offset < data.byteLength) {
      const take = Math.min(this.#chunkSize - this.#filled, data.byteLength - offset);
      this.#buffer.set(data.subarray(offset, offset + take), this.#filled);
      this.#filled += take;
      offset += take;
      if (this.#filled === this.#chunkSize) await this.#flush();
    }
  }

  async #flush(): Promise<void> {
    if (this.#filled === 0) return;
    const raw = this.#buffer.subarray(0, this.#filled);
    const { stored, entry } = base64Chunk(raw) ?? storedChunk(raw, await brotliAsync(raw));
    await this.#sink.write(stored);
    this.#index.push(entry);
    this.#rawSize += this.#filled;
    this.#storedSize += stored.byteLength;
    this.#filled = 0;
  }

  async finish(): Promise<EncodeResult> {
    if (this.#finished) throw new Error('BlobEncoder: finish called twice');
    await this.#flush();
    this.#finished = true;
    const tail = footer(this.#index, this.#chunkSize, this.#rawSize);
    await this.#sink.write(tail);
    this.#storedSize += tail.byteLength;
    return { rawSize: this.#rawSize, storedSize: this.#storedSize, chunks: this.#index.length };
  }
}

/** Random access to the stored (encoded) bytes: a file handle, a GridFS file, a buffer. */
export interface BlobSource {
  /** Total stored size in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface BlobLayout {
  rawSize: number;
  chunkSize: number;
  /** Per chunk: offset of its stored bytes, stored length, how it is stored. */
  chunks: Array<{ offset: number; length: number; codec: 'raw' | 'deflate' | 'brotli' | 'base64' }>;
}

export class BlobFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BlobFormatError';
  }
}

/** Reads the footer and chunk index. */
export async function readLayout(source: BlobSource): Promise<BlobLayout> {
  if (source.size < FOOTER_SIZE) throw new BlobFormatError('blob too short for footer');
  const footer = await source.read(source.size - FOOTER_SIZE, FOOTER_SIZE);
  if (footer.byteLength !== FOOTER_SIZE) throw new BlobFormatError('short read of footer');
  for (let i = 0; i < 4; i++) if (footer[20 + i] !== MAGIC[i]) throw new BlobFormatError('bad blob magic');
  const fv = new DataView(footer.buffer, footer.byteOffset, footer.byteLength);
  const version = fv.getUint32(0, true);
  if (version !== 1 && version !== VERSION && version !== VERSION_BASE64) throw new BlobFormatError(`unsupported blob version ${version}`);
  const lengthMask = version === 1 ? 0x7fffffff : MAX_CHUNK_SIZE;
  const chunkSize = fv.getUint32(4, true);
  const n = fv.getUint32(8, true);
  const rawSize = fv.getUint32(12, true) + fv.getUint32(16, true) * 0x100000000;
  const indexStart = source.size - FOOTER_SIZE - n * 4;
  if (indexStart < 0) throw new BlobFormatError('blob index out of range');
  const index = n > 0 ? await source.read(indexStart, n * 4) : new Uint8Array(0);
  const iv = new DataView(index.buffer, index.byteOffset, index.byteLength);
  const chunks: BlobLayout['chunks'] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const entry = iv.getUint32(i * 4, true);
    const length = entry & lengthMask;
    const codec =
      version >= VERSION_BASE64 && (entry & BASE64_FLAGS) === BASE64_FLAGS
        ? 'base64'
        : (entry & RAW_FLAG) !== 0
          ? 'raw'
          : version > 1 && (entry & BROTLI_FLAG) !== 0
            ? 'brotli'
            : 'deflate';
    chunks.push({ offset, length, codec });
    offset += length;
  }
  if (offset !== indexStart) throw new BlobFormatError('blob chunk index does not match its size');
  return { rawSize, chunkSize, chunks };
}

async function decodeChunk(codec: BlobLayout['chunks'][number]['codec'], stored: Uint8Array): Promise<Uint8Array> {
  switch (codec) {
    case 'raw':
      return stored;
    case 'brotli':
      return unbrotliAsync(stored);
    case 'deflate':
      return inflateAsync(stored);
    case 'base64':
      try {
        return decodeBase64Lines(stored);
      } catch (err) {
        throw new BlobFormatError(err instanceof Error ? err.message : String(err));
      }
  }
}

/** Yields decoded bytes [start, end) reading and inflating only the chunks that overlap the range. */
export async function* decodeRange(source: BlobSource, start = 0, end = Infinity, layout?: BlobLayout): AsyncGenerator<Uint8Array> {
  const l = layout ?? (await readLayout(source));
  const from = Math.max(0, Math.floor(start));
  const to = Math.min(l.rawSize, end);
  if (!(to > from)) return;
  const first = Math.floor(from / l.chunkSize);
  const last = Math.floor((to - 1) / l.chunkSize);
  for (let i = first; i <= last; i++) {
    const c = l.chunks[i];
    if (!c) throw new BlobFormatError('blob chunk missing');
    const stored = await source.read(c.offset, c.length);
    if (stored.byteLength !== c.length) throw new BlobFormatError('short read of blob chunk');
    const plain = await decodeChunk(c.codec, stored);
    const chunkStart = i * l.chunkSize;
    const s = Math.max(from - chunkStart, 0);
    const e = Math.min(to - chunkStart, plain.byteLength);
    if (e > s) yield s === 0 && e === plain.byteLength ? plain : plain.subarray(s, e);
  }
}

/** Encodes a whole value in memory (tests, small blobs). */
export async function encodeBlob(data: Uint8Array, options: { chunkSize?: number } = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const encoder = new BlobEncoder({ write: async (b) => void parts.push(b.slice()) }, options);
  await encoder.write(data);
  await encoder.finish();
  return concatBytes(parts);
}

/** A BlobSource over bytes in memory. */
export function bytesSource(bytes: Uint8Array): BlobSource {
  return {
    size: bytes.byteLength,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

