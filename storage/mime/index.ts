/** MIME ingest shared by every storage backend: parse once while streaming, reassemble byte for byte. */
export { ingestMessage, hasAttachments, contentHash, MessageTooLargeError } from './ingest.ts';
export type { IngestOptions } from './ingest.ts';
export { canDecode, decodeStream, isIdentity, transferDecoder } from './transfer-decode.ts';
export { readMessage, readAll, readHeader, readBody, readNode, findPart, messageRoot, contentSize } from './reassemble.ts';
export { MimeSplitter, DEFAULT_MAX_DEPTH, DEFAULT_MAX_HEADER_SIZE, mimeNode } from './splitter.ts';
export type { SplitterSink, SplitterOptions } from './splitter.ts';
export { DEFAULT_BLOB_THRESHOLD } from './segments.ts';
export { DEFAULT_SEARCH_TEXT_LIMIT } from './search-text.ts';
export { parseHeaderBlock, getHeader, getHeaders, decodeWords, fileName } from './headers.ts';
export type { HeaderField } from './headers.ts';
export { buildEnvelope, parseAddressList, messageIds } from './envelope.ts';
