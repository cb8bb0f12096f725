/**
 * Turns the splitter's output into a `MessageContent`: inline bytes plus blob references. A leaf body (or
 * preamble / epilogue) is buffered up to `blobThreshold` bytes; past that it streams into a staged blob, so a
 * large attachment never sits in memory. Blob writes are queued and awaited by `flush()` after every input chunk.
 */
import type { BlobWriter, BlobsPort, MessageContent, MimeNode, Segment, StagedBlob } from '../ports.ts';
import type { SplitterSink } from './splitter.ts';
import { concatBytes } from '../bytes.ts';

export const DEFAULT_BLOB_THRESHOLD = 16 * 1024;

/**
 * The bytes to keep of a view into an input chunk: the view itself when it covers at least a quarter of the chunk's
 * memory (no copy: an input chunk is never changed after the parser got it), else a copy, so a message whose small
 * pieces are spread over many chunks never keeps all of those chunks alive (kept memory stays within 4x the bytes).
 */
function keep(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength * 4 >= bytes.buffer.byteLength ? bytes : bytes.slice();
}
/** Bytes gathered before one `BlobWriter.write()` call. */
const WRITE_SIZE = 64 * 1024;


export class SegmentBuilder implements SplitterSink {
  /** Blobs finished so far, in message order. */
  readonly staged: StagedBlob[] = [];

  private readonly blobs: BlobsPort;
  private readonly threshold: number;
  private readonly segments: Segment[] = [];
  private lastInline: Segment | null = null;
  private inlineChunks: Uint8Array[] = [];
  private inlineSize = 0;

  private runChunks: Uint8Array[] = [];
  private runSize = 0;
  private writer: BlobWriter | null = null;
  private writeChunks: Uint8Array[] = [];
  private writeSize = 0;
  /** Bytes handed to the current writer so far. */
  private blobLength = 0;
  /** Writers started and not yet finished: aborted on failure. */
  private readonly open = new Set<BlobWriter>();
  private queue: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | null = null;

  constructor(blobs: BlobsPort, threshold: number = DEFAULT_BLOB_THRESHOLD) {
    this.blobs = blobs;
    this.threshold = threshold;
  }

  inline(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.inlineChunks.push(keep(bytes));
    this.inlineSize += bytes.length;
    if (this.lastInline) {
      this.lastInline.length += bytes.length;
    } else {
      this.lastInline = { length: bytes.length };
      this.segments.push(this.lastInline);
    }
  }

  runStart(_node: MimeNode, _leaf: boolean): void {
    this.runChunks = [];
    this.runSize = 0;
    this.writer = null;
  }

  runData(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.writer) {
      this.writeChunks.push(keep(bytes));
      this.writeSize += bytes.length;
      if (this.writeSize >= WRITE_SIZE) this.queueWrite();
      return;
    }
    this.runChunks.push(keep(bytes));
    this.runSize += bytes.length;
    if (this.runSize > this.threshold) {
      const writer = this.blobs.stage();
      this.writer = writer;
      this.open.add(writer);
      this.writeChunks = this.runChunks;
      this.writeSize = this.runSize;
      this.runChunks = [];
      this.queueWrite();
    }
  }

  runEnd(): void {
    const writer = this.writer;
    if (!writer) {
      for (const chunk of this.runChunks) this.inline(chunk);
      this.runChunks = [];
      this.runSize = 0;
      return;
    }
    this.queueWrite();
    this.writer = null;
    const segment: Segment = { length: this.blobLength };
    this.blobLength = 0;
    this.segments.push(segment);
    this.lastInline = null;
    this.enqueue(async () => {
      const staged = await writer.finish();
      this.open.delete(writer);
      this.staged.push(staged);
      segment.blob = staged.hash;
    });
  }

  /** Waits for queued blob writes; rethrows a write failure. */
  async flush(): Promise<void> {
    await this.queue;
    if (this.failure) throw this.failure.error;
  }

  /** All writes done: the content, ready to store. */
  async finish(): Promise<MessageContent> {
    await this.flush();
    let inline = concatBytes(this.inlineChunks, this.inlineSize);
    // one piece may be a view into an input chunk: the stored value gets memory of its own
    if (inline.byteLength !== inline.buffer.byteLength) inline = inline.slice();
    this.inlineChunks = [inline];
    return { inline, segments: this.segments };
  }

  /** Drops everything staged so far (failed or refused ingest). Never throws. */
  async abort(): Promise<void> {
    await this.queue.catch(() => undefined);
    for (const writer of this.open) await writer.abort().catch(() => undefined);
    this.open.clear();
    if (this.staged.length > 0) await this.blobs.discard(this.staged.splice(0)).catch(() => undefined);
  }

  /** Hands the gathered bytes to the writer, which may keep them: never changed again (see keep()). */
  private queueWrite(): void {
    const writer = this.writer;
    if (!writer || this.writeSize === 0) return;
    const data = concatBytes(this.writeChunks, this.writeSize);
    this.blobLength += data.length;
    this.writeChunks = [];
    this.writeSize = 0;
    this.enqueue(() => writer.write(data));
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.failure) return;
      try {
        await task();
      } catch (error) {
        this.failure = { error };
      }
    });
  }
}
