/**
 * Request bodies: read with the size limit enforced while reading (a declared Content-Length over the limit is
 * refused before a byte is read; a chunked body is cut off the moment it passes the limit), then parsed as
 * JSON. Failures are ApiErrors (413 PayloadTooLarge, 400 InvalidJson, 415 UnsupportedMediaType).
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.ts';

export async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number): ApiError {
  return new ApiError('PayloadTooLarge', `Request body larger than ${limit} bytes`);
}

/** Reads and parses a JSON body; an empty body is `{}` (every field optional routes accept none at all). */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const bytes = await readBody(req, limit);
  if (bytes.length === 0) return {};
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) throw new ApiError('UnsupportedMediaType');
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new ApiError('InvalidJson');
  }
}

/** The media type of a request, lowercased, without parameters; '' when absent. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * The request body as a stream that throws 413 PayloadTooLarge the moment it passes `limit` (a declared
 * Content-Length over it is refused before a byte is read).
 */
export function limitedBody(req: IncomingMessage, limit: number): AsyncIterable<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  return (async function* () {
    let size = 0;
    for await (const chunk of req as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      yield chunk;
    }
  })();
}
