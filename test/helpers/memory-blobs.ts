/** In-memory BlobsPort for unit tests: sha256-addressed, no compression, no reference counting. */
import { createHash } from 'node:crypto';
import type { BlobWriter, BlobsPort, StagedBlob } from '../../storage/ports.ts';

export class MemoryBlobs implements BlobsPort {
  /** Every finished blob by hash (staged or not: there is no commit step here). */
  readonly store = new Map<string, Uint8Array>();
  /** Writers started, finished, aborted; blobs discarded; read() calls with their ranges. */
  started = 0;
  finished = 0;
  aborted = 0;
  discarded: string[] = [];
  reads: Array<{ hash: string; start: number; end: number }> = [];
  /** When set, the n-th write() call (1-based, across writers) throws. */
  failOnWrite: number | null = null;
  /** Bytes received by write() across all writers. */
  bytesWritten = 0;
  private writes = 0;

  stage(): BlobWriter {
    this.started++;
    const chunks: Uint8Array[] = [];
    const hash = createHash('sha256');
    let size = 0;
    let done: StagedBlob | null = null;
    let aborted = false;
    return {
      write: async (chunk) => {
        if (done || aborted) throw new Error('write after finish/abort');
        this.writes++;
        if (this.failOnWrite !== null && this.writes >= this.failOnWrite) throw new Error('injected write failure');
        chunks.push(chunk.slice());
        this.bytesWritten += chunk.length;
        hash.update(chunk);
        size += chunk.length;
      },
      finish: async () => {
        if (aborted) throw new Error('finish after abort');
        if (done) return done;
        const data = new Uint8Array(size);
        let offset = 0;
        for (const chunk of chunks) {
          data.set(chunk, offset);
          offset += chunk.length;
        }
        done = { hash: hash.digest('hex'), size };
        this.store.set(done.hash, data);
        this.finished++;
        return done;
      },
      abort: async () => {
        if (aborted) return;
        aborted = true;
        this.aborted++;
        if (done) this.store.delete(done.hash);
      },
    };
  }

  async *read(hash: string, start = 0, end?: number): AsyncIterable<Uint8Array> {
    const data = this.store.get(hash);
    if (!data) throw new Error(`no blob ${hash}`);
    const to = Math.min(end ?? data.length, data.length);
    this.reads.push({ hash, start, end: to });
    for (let offset = start; offset < to; offset += 7 * 1024) yield data.slice(offset, Math.min(to, offset + 7 * 1024));
  }

  async discard(staged: StagedBlob[]): Promise<void> {
    for (const blob of staged) {
      this.discarded.push(blob.hash);
      this.store.delete(blob.hash);
    }
  }

  async collect(): Promise<number> {
    return 0;
  }

  async stats(): Promise<{ count: number; size: number; storedSize: number }> {
    let size = 0;
    for (const data of this.store.values()) size += data.length;
    return { count: this.store.size, size, storedSize: size };
  }
}
