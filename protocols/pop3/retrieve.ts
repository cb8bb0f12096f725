/**
 * RETR and TOP bodies, streamed from storage segment by segment (storage/mime readMessage), never loaded whole.
 */
import type { PipelineApp } from '../../hooks/pipeline/index.ts';
import { readMessage } from '../../storage/mime/reassemble.ts';

export interface RetrievedMessage {
  readonly source: AsyncIterable<Uint8Array>;
  /** Bytes it will yield at least: the whole message for RETR, the header for TOP (download limits check this). */
  readonly bytes: number;
}

/** The whole message (RETR), or its header plus the first `lines` body lines (TOP); null when it is gone. */
export async function messageSource(app: PipelineApp, mailboxId: string, uid: number, lines?: number): Promise<RetrievedMessage | null> {
  const record = await app.storage.messages.get(mailboxId, uid);
  if (!record) return null;
  const content = await app.storage.messages.content(record.id);
  if (!content) return null;
  if (lines === undefined) return { source: readMessage(content, app.storage.blobs), bytes: record.size };
  const bodyStart = record.mime.bodyStart;
  const source = (async function* () {
    yield* readMessage(content, app.storage.blobs, 0, bodyStart);
    if (lines > 0) yield* firstLines(readMessage(content, app.storage.blobs, bodyStart), lines);
  })();
  return { source, bytes: bodyStart };
}

/** The first `n` lines of a stream (each with its line break). Stops reading once they are out. */
export async function* firstLines(source: AsyncIterable<Uint8Array>, n: number): AsyncIterable<Uint8Array> {
  let left = n;
  for await (const chunk of source) {
    let end = chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === 0x0a && --left === 0) {
        end = i + 1;
        break;
      }
    }
    yield end === chunk.length ? chunk : chunk.subarray(0, end);
    if (left === 0) return;
  }
}

/** Passes a stream through, telling `onBytes` how many bytes each chunk had. */
export async function* counted(source: AsyncIterable<Uint8Array>, onBytes: (n: number) => void): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}
