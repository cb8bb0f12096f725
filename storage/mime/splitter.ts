/**
 * Streaming MIME splitter: bytes in, a `MimeNode` tree with exact byte offsets out, and every byte handed to a
 * sink exactly once and in order — either as `inline` (header blocks, boundary lines with the line break before
 * them) or inside a run (a leaf body, a preamble, an epilogue). Memory stays bounded: header blocks up to
 * `maxHeaderSize`, one line up to `LONG_LINE` bytes (longer lines pass through in pieces), nothing else.
 *
 * It never throws on malformed input; it gives a best-effort tree and keeps every byte. Rules for the odd cases:
 * - a header block ends at an empty line, at a boundary line of an enclosing multipart, at the end of input, or
 *   when it would exceed `maxHeaderSize` (the rest is then body); a block whose first line is not a header field
 *   is empty (the part is all body);
 * - a multipart without a boundary parameter, past `maxDepth`, or in which no boundary line was ever found has no
 *   `children` (render it as a basic part);
 * - a boundary line of an outer multipart closes every part opened inside it (missing closing boundaries);
 * - message/rfc822 and message/global bodies in 7bit/8bit/binary are parsed as messages (`node.message`).
 */
import { Buffer } from 'node:buffer';
import type { Envelope, MimeNode } from '../ports.ts';
import { buildEnvelope } from './envelope.ts';
import { applyMimeHeaders, looksLikeHeaderLine, parseHeaderBlock } from './headers.ts';
import type { HeaderField } from './headers.ts';
import { concatBytes } from '../bytes.ts';

export interface SplitterSink {
  /** Bytes outside any run. Only valid during the call: copy to keep. */
  inline(bytes: Uint8Array): void;
  /** A run starts: the body of leaf `node` (`leaf` true), or a multipart's preamble / epilogue (false). */
  runStart(node: MimeNode, leaf: boolean): void;
  /** Bytes of the current run. Only valid during the call: copy to keep. */
  runData(bytes: Uint8Array): void;
  runEnd(): void;
}

export interface SplitterOptions {
  /** Largest header block parsed as headers, bytes (default 1 MiB). */
  maxHeaderSize?: number;
  /** Deepest nesting of multiparts and encapsulated messages parsed as such (default 50). */
  maxDepth?: number;
}

export const DEFAULT_MAX_HEADER_SIZE = 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 50;
/** Lines longer than this are passed on in pieces and never taken for boundaries or empty lines. */
const LONG_LINE = 8192;
const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const LF_DASH = Buffer.from([LF, DASH]);

type Mode = 'header' | 'leaf' | 'preamble' | 'parts' | 'epilogue' | 'message';

interface Frame {
  node: MimeNode;
  mode: Mode;
  depth: number;
  defaultType: [string, string];
  headerChunks: Uint8Array[];
  headerSize: number;
  /** Active "--boundary" bytes while this multipart is open (preamble or parts). */
  boundary: Uint8Array | null;
  /** LF count before bodyStart, for `lines`. */
  lfAtBodyStart: number;
  /** For a message root: where its envelope goes (null for the top-level message). */
  holder: { envelope: Envelope; root: MimeNode } | null;
  digest: boolean;
}

export function emptyEnvelope(): Envelope {
  return {
    date: null,
    subject: null,
    from: null,
    sender: null,
    replyTo: null,
    to: null,
    cc: null,
    bcc: null,
    inReplyTo: null,
    messageId: null,
  };
}

/**
 * A MIME node with every field at its RFC default (text/plain, 7bit, empty body at offset 0), overridden by
 * `fields`: what the splitter starts each part from, and what tests build nodes from.
 */
export function mimeNode(fields: Partial<MimeNode> = {}): MimeNode {
  return {
    part: '',
    headerStart: 0,
    bodyStart: 0,
    bodyEnd: 0,
    type: 'text',
    subtype: 'plain',
    params: {},
    disposition: null,
    encoding: '7bit',
    id: null,
    description: null,
    md5: null,
    language: null,
    location: null,
    size: 0,
    lines: 0,
    ...fields,
  };
}

function newNode(part: string, headerStart: number): MimeNode {
  return mimeNode({ part, headerStart, bodyStart: headerStart, bodyEnd: headerStart });
}


/**
 * End of the run of complete lines from `start` in which no line starts with "--" (so none can be a boundary line):
 * `start` itself when the first line is incomplete or starts with "--" (or with a "-" that ends the chunk).
 * `view` is `chunk` as a Buffer: its indexOf is a native search (a few times faster than Uint8Array's), used to jump
 * from one line-starting "-" to the next instead of walking line by line.
 */
function bodySpanEnd(chunk: Uint8Array, view: Buffer, start: number): number {
  if (chunk[start] === DASH && (start + 1 >= chunk.length || chunk[start + 1] === DASH)) return start;
  for (let from = start; ; ) {
    const at = view.indexOf(LF_DASH, from);
    if (at < 0) break;
    if (at + 2 >= chunk.length || chunk[at + 2] === DASH) return at + 1;
    from = at + 1;
  }
  const last = view.lastIndexOf(LF);
  return last < start ? start : last + 1;
}

/** Line breaks in `bytes`. */
function countLf(bytes: Uint8Array): number {
  const view = bufferView(bytes);
  let n = 0;
  for (let at = view.indexOf(LF); at >= 0; at = view.indexOf(LF, at + 1)) n++;
  return n;
}

/** The same bytes as a Buffer, for searching only: what goes to the sink stays a plain Uint8Array (whose slice() copies). */
function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === CR || byte === LF;
}

export class MimeSplitter {
  readonly root: MimeNode;
  /** Header fields of the top-level message (available once its header block has ended). */
  rootFields: HeaderField[] = [];

  private readonly sink: SplitterSink;
  private readonly maxHeaderSize: number;
  private readonly maxDepth: number;
  private readonly stack: Frame[] = [];
  private readonly encoder = new TextEncoder();
  /** Absolute offset of the next byte to dispatch; LFs before it; the byte before it (-1 at start). */
  private pos = 0;
  private lfCount = 0;
  private prevByte = -1;
  /** Start of a line not yet complete, buffered below LONG_LINE. */
  private partial: Uint8Array[] = [];
  private partialSize = 0;
  /** Inside a long line already passed on in part. */
  private longLine = false;
  /** Line break of the last body line, held until we know whether a boundary follows. */
  private pendingEol: Uint8Array | null = null;
  private beforeEolByte = -1;
  private runOpen = false;
  private finished = false;

  constructor(sink: SplitterSink, options: SplitterOptions = {}) {
    this.sink = sink;
    this.maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.root = newNode('', 0);
    this.stack.push(this.frame(this.root, 0, ['text', 'plain'], null));
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.pos + this.partialSize;
  }

  write(chunk: Uint8Array): void {
    if (this.finished) throw new Error('MimeSplitter: write after end');
    const view = bufferView(chunk);
    let i = 0;
    while (i < chunk.length) {
      if (!this.longLine && this.partialSize === 0 && this.stack[this.stack.length - 1]!.mode !== 'header') {
        const end = bodySpanEnd(chunk, view, i);
        if (end > i) {
          this.bodySpan(chunk.subarray(i, end));
          i = end;
          continue;
        }
      }
      const nl = view.indexOf(LF, i);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(i, end);
      i = end;
      if (this.longLine) {
        this.dispatch(piece, nl >= 0);
      } else if (nl >= 0) {
        const line = this.partialSize > 0 ? concatBytes([...this.partial, piece], this.partialSize + piece.length) : piece;
        this.partial = [];
        this.partialSize = 0;
        this.dispatch(line, true);
      } else {
        this.partial.push(piece.slice());
        this.partialSize += piece.length;
        if (this.partialSize > LONG_LINE) {
          const line = concatBytes(this.partial, this.partialSize);
          this.partial = [];
          this.partialSize = 0;
          this.dispatch(line, false);
        }
      }
    }
  }

  /** Ends the input: closes every open part at the end of the message. Returns the root node. */
  end(): MimeNode {
    if (this.finished) return this.root;
    if (this.partialSize > 0) {
      const line = concatBytes(this.partial, this.partialSize);
      this.partial = [];
      this.partialSize = 0;
      this.dispatch(line, true);
    }
    this.finished = true;
    if (this.pendingEol) {
      this.sink.runData(this.pendingEol); // the last line break belongs to the innermost body
      this.pendingEol = null;
    }
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1]!;
      if (top.mode === 'header') {
        this.endHeaders(top, this.pos, this.lfCount);
        continue;
      }
      this.endRun();
      this.closeFrame(top, this.pos, this.lfCount, this.prevByte);
      this.stack.pop();
    }
    return this.root;
  }

  private frame(node: MimeNode, depth: number, defaultType: [string, string], holder: Frame['holder']): Frame {
    return {
      node,
      mode: 'header',
      depth,
      defaultType,
      headerChunks: [],
      headerSize: 0,
      boundary: null,
      lfAtBodyStart: 0,
      holder,
      digest: false,
    };
  }

  private dispatch(bytes: Uint8Array, complete: boolean): void {
    const cont = this.longLine;
    this.longLine = !complete;
    this.handle(bytes, cont);
    this.pos += bytes.length;
    const last = bytes[bytes.length - 1]!;
    if (last === LF) this.lfCount++;
    this.prevByte = last;
  }

  private handle(bytes: Uint8Array, cont: boolean): void {
    const top = this.stack[this.stack.length - 1]!;
    if (top.mode === 'header') this.headerLine(top, bytes, cont);
    else this.bodyLine(bytes, cont);
  }

  private headerLine(frame: Frame, bytes: Uint8Array, cont: boolean): void {
    if (!cont) {
      const empty = (bytes.length === 1 && bytes[0] === LF) || (bytes.length === 2 && bytes[0] === CR && bytes[1] === LF);
      if (empty) {
        this.sink.inline(bytes);
        frame.headerSize += bytes.length;
        this.endHeaders(frame, this.pos + bytes.length, this.lfCount + 1);
        return;
      }
      if ((frame.headerSize === 0 && !looksLikeHeaderLine(bytes)) || this.matchBoundary(bytes) !== null) {
        this.endHeaders(frame, this.pos, this.lfCount); // no header block, or one without its empty line
        this.handle(bytes, cont);
        return;
      }
    }
    if (frame.headerSize + bytes.length > this.maxHeaderSize) {
      this.endHeaders(frame, this.pos, this.lfCount); // too big to parse: the rest is body
      this.handle(bytes, cont);
      return;
    }
    this.sink.inline(bytes);
    frame.headerChunks.push(bytes.slice());
    frame.headerSize += bytes.length;
  }

  private endHeaders(frame: Frame, bodyStart: number, lfAtBodyStart: number): void {
    const node = frame.node;
    node.bodyStart = bodyStart;
    frame.lfAtBodyStart = lfAtBodyStart;
    const fields = parseHeaderBlock(concatBytes(frame.headerChunks, frame.headerSize));
    frame.headerChunks = [];
    applyMimeHeaders(node, fields, frame.defaultType);
    if (frame.holder) frame.holder.envelope = buildEnvelope(fields);
    else if (node === this.root) this.rootFields = fields;

    const nestable = frame.depth < this.maxDepth;
    if (node.type === 'multipart' && node.params.boundary && nestable) {
      frame.mode = 'preamble';
      frame.boundary = this.encoder.encode('--' + node.params.boundary);
      frame.digest = node.subtype === 'digest';
      node.children = [];
      this.runStart(node, false);
    } else if (
      node.type === 'message' &&
      (node.subtype === 'rfc822' || node.subtype === 'global') &&
      (node.encoding === '7bit' || node.encoding === '8bit' || node.encoding === 'binary') &&
      nestable
    ) {
      frame.mode = 'message';
      const root = newNode(node.part || '1', bodyStart);
      const holder = { envelope: emptyEnvelope(), root };
      node.message = holder;
      this.stack.push(this.frame(root, frame.depth + 1, ['text', 'plain'], holder));
    } else {
      frame.mode = 'leaf';
      this.runStart(node, true);
    }
  }

  private runStart(node: MimeNode, leaf: boolean): void {
    this.endRun();
    this.runOpen = true;
    this.sink.runStart(node, leaf);
  }

  private endRun(): void {
    if (!this.runOpen) return;
    this.runOpen = false;
    this.sink.runEnd();
  }

  private bodyLine(bytes: Uint8Array, cont: boolean): void {
    if (!cont) {
      const match = this.matchBoundary(bytes);
      if (match !== null) {
        this.boundaryLine(match.index, match.close, bytes);
        return;
      }
    }
    if (this.pendingEol) {
      this.sink.runData(this.pendingEol);
      this.pendingEol = null;
    }
    const n = bytes.length;
    if (bytes[n - 1] === LF) {
      const eolLength = n >= 2 && bytes[n - 2] === CR ? 2 : 1;
      const contentLength = n - eolLength;
      if (contentLength > 0) this.sink.runData(bytes.subarray(0, contentLength));
      this.beforeEolByte = contentLength > 0 ? bytes[contentLength - 1]! : cont ? -1 : this.prevByte;
      this.pendingEol = bytes.slice(contentLength);
    } else {
      this.sink.runData(bytes);
    }
  }

  /**
   * Whole body lines none of which can be a boundary (none starts with "--"), as one piece: the same sink calls as
   * `bodyLine` per line would make, joined (the last line break held back in case a boundary follows).
   */
  private bodySpan(span: Uint8Array): void {
    const lfs = countLf(span);
    if (this.pendingEol) {
      this.sink.runData(this.pendingEol);
      this.pendingEol = null;
    }
    const n = span.length;
    const eolLength = n >= 2 && span[n - 2] === CR ? 2 : 1;
    const contentLength = n - eolLength;
    if (contentLength > 0) this.sink.runData(span.subarray(0, contentLength));
    this.beforeEolByte = contentLength > 0 ? span[contentLength - 1]! : this.prevByte;
    this.pendingEol = span.slice(contentLength);
    this.pos += n;
    this.lfCount += lfs;
    this.prevByte = LF;
  }

  /** Innermost open multipart whose boundary this line is, or null. */
  private matchBoundary(bytes: Uint8Array): { index: number; close: boolean } | null {
    if (bytes.length < 3 || bytes[0] !== DASH || bytes[1] !== DASH) return null;
    for (let index = this.stack.length - 1; index >= 0; index--) {
      const boundary = this.stack[index]!.boundary;
      if (boundary === null || bytes.length < boundary.length) continue;
      let same = true;
      for (let i = 2; i < boundary.length; i++) {
        if (bytes[i] !== boundary[i]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      let rest = boundary.length;
      let close = false;
      if (bytes[rest] === DASH && bytes[rest + 1] === DASH) {
        close = true;
        rest += 2;
      }
      let onlySpace = true;
      for (let i = rest; i < bytes.length; i++) {
        if (!isWhitespace(bytes[i]!)) {
          onlySpace = false;
          break;
        }
      }
      if (onlySpace) return { index, close };
    }
    return null;
  }

  private boundaryLine(index: number, close: boolean, bytes: Uint8Array): void {
    const eol = this.pendingEol;
    const end = this.pos - (eol ? eol.length : 0);
    const lfAtEnd = this.lfCount - (eol ? 1 : 0);
    const byteBefore = eol ? this.beforeEolByte : this.prevByte;
    this.endRun();
    while (this.stack.length - 1 > index) {
      this.closeFrame(this.stack.pop()!, end, lfAtEnd, byteBefore);
    }
    if (eol) {
      this.sink.inline(eol);
      this.pendingEol = null;
    }
    const frame = this.stack[index]!;
    if (close) {
      // RFC 2046: close-delimiter [CRLF epilogue]. The line break after `--boundary--` is the epilogue's, or,
      // when an enclosing boundary follows at once, the CRLF that belongs to that delimiter: hold it like a
      // body line's last line break, so an encapsulated message ends at its own `--boundary--`.
      const n = bytes.length;
      const eolLength = bytes[n - 1] === LF ? (n >= 2 && bytes[n - 2] === CR ? 2 : 1) : 0;
      this.sink.inline(bytes.subarray(0, n - eolLength));
      frame.mode = 'epilogue';
      frame.boundary = null;
      this.runStart(frame.node, false);
      if (eolLength > 0) {
        this.beforeEolByte = bytes[n - eolLength - 1]!;
        this.pendingEol = bytes.slice(n - eolLength);
      }
      return;
    }
    this.sink.inline(bytes);
    frame.mode = 'parts';
    const parent = frame.node;
    const children = parent.children!;
    const part = parent.part ? `${parent.part}.${children.length + 1}` : `${children.length + 1}`;
    const child = newNode(part, this.pos + bytes.length);
    children.push(child);
    const defaultType: [string, string] = frame.digest ? ['message', 'rfc822'] : ['text', 'plain'];
    this.stack.push(this.frame(child, frame.depth + 1, defaultType, null));
  }

  private closeFrame(frame: Frame, end: number, lfAtEnd: number, byteBefore: number): void {
    const node = frame.node;
    node.bodyEnd = Math.max(end, node.bodyStart);
    node.size = node.bodyEnd - node.bodyStart;
    node.lines = node.size > 0 ? lfAtEnd - frame.lfAtBodyStart + (byteBefore === LF ? 0 : 1) : 0;
    frame.boundary = null;
    if (node.children && node.children.length === 0) delete node.children;
  }
}
