/**
 * RETR and TOP bodies, streamed from storage segment by segment (storage/mime readMessage), never loaded whole.
 */
import type { PipelineApp } from '../../hooks/pipeline/index.ts';
import { readMessage } from '../../storage/mime/reassemble.ts';

/** The whole message (RETR), or its header plus the first `lines` body lines (TOP); null when it is gone. */
export async function messageSource(app: PipelineApp, mailboxId: string, uid: number, lines?: number): Promise<AsyncIterable<Uint8Array> | null> {
  const record = await app.storage.messages.get(mailboxId, uid);
  if (!record) return null;
  const content = await app.storage.messages.content(record.id);
  if (!content) return null;
  if (lines === undefined) return readMessage(content, app.storage.blobs);
  const bodyStart = record.mime.bodyStart;
  return (async function* () {
    yield* readMessage(content, app.storage.blobs, 0, bodyStart);
    if (lines > 0) yield* firstLines(readMessage(content, app.storage.blobs, bodyStart), lines);
  })();
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
