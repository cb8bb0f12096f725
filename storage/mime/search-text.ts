/**
 * Decoded searchable text, gathered while the splitter streams: text/plain and text/html leaf bodies (not
 * attachments) are kept up to a bounded number of raw bytes each, then transfer-decoded (base64, quoted-printable
 * through libqp), charset-decoded (libmime → iconv-lite / encoding-japanese) and, for HTML, converted to text
 * (html-to-text). Attachment file names come first. This is the body half of search (BODY); header fields are kept
 * apart (search-headers.ts) so BODY never matches a header.
 */
import { Buffer } from 'node:buffer';
import { compile as compileHtmlToText } from 'html-to-text';
import { DEFAULT_MAX_HTML_DEPTH, htmlNestedDeeperThan, stripTags } from './html-depth.ts';
import { decode as decodeQuotedPrintable } from 'libqp';
import { decode as decodeCharset } from 'libmime/lib/charset.js';
import type { MimeNode } from '../ports.ts';
import { fileName } from './headers.ts';
import type { SplitterSink } from './splitter.ts';

export const DEFAULT_SEARCH_TEXT_LIMIT = 256 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Transfer-decodes a (possibly truncated) body. */
function transferDecode(raw: Uint8Array, encoding: string): Buffer {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (encoding === 'base64') return Buffer.from(bytes.toString('latin1'), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(bytes);
  return bytes;
}

/** Bytes → string in the declared charset; undeclared 8-bit text is UTF-8 when valid, else Windows-1252. */
export function decodeText(bytes: Buffer, charset: string | undefined): string {
  const declared = charset?.trim().toLowerCase();
  if (!declared || declared === 'us-ascii' || declared === 'ascii') {
    try {
      return utf8.decode(bytes);
    } catch {
      return decodeCharset(bytes, 'windows-1252');
    }
  }
  try {
    return decodeCharset(bytes, declared);
  } catch {
    return bytes.toString('latin1');
  }
}

/** Compiled once: `convert(html, options)` compiles its options on every call, half its cost on short mail. */
let htmlToText: ((html: string) => string) | null = null;

function htmlText(html: string, maxDepth: number): string {
  // nesting makes the HTML parser superlinear (html-depth.ts): too deep, the tags are stripped instead
  if (htmlNestedDeeperThan(html, maxDepth)) return stripTags(html);
  try {
    const convert = (htmlToText ??= compileHtmlToText({
      wordwrap: false,
      selectors: [
        { selector: 'a', options: { ignoreHref: true } },
        { selector: 'img', format: 'skip' },
      ],
    }));
    return convert(html);
  } catch {
    return stripTags(html);
  }
}

interface Collecting {
  node: MimeNode;
  chunks: Uint8Array[];
  size: number;
}

export class SearchTextCollector implements SplitterSink {
  private readonly limit: number;
  private readonly maxHtmlDepth: number;
  /** Raw bytes kept per text part: enough for `limit` characters in any charset and transfer encoding. */
  private readonly rawLimit: number;
  private readonly texts: string[] = [];
  /** The part each entry of `texts` came from. */
  private readonly textNodes: MimeNode[] = [];
  private textSize = 0;
  private current: Collecting | null = null;
  /** Set by leaveOutAlternatives(): the message being split. */
  private root: MimeNode | null = null;

  constructor(limit: number = DEFAULT_SEARCH_TEXT_LIMIT, maxHtmlDepth: number = DEFAULT_MAX_HTML_DEPTH) {
    this.limit = limit;
    this.maxHtmlDepth = maxHtmlDepth;
    this.rawLimit = limit * 6 + 1024;
  }

  /**
   * For result() only: parts that result() would leave out as the other alternatives of a text/plain part already
   * collected (the HTML half of most mail) are not decoded at all. `root`: the splitter's root node, which grows as
   * the message is split. bodyText() then lacks those parts too (filters want every part: they do not call this).
   */
  leaveOutAlternatives(root: MimeNode): this {
    this.root = root;
    return this;
  }

  inline(_bytes: Uint8Array): void {}

  runStart(node: MimeNode, leaf: boolean): void {
    this.current = null;
    if (!leaf || this.textSize >= this.limit) return;
    if (node.type !== 'text' || (node.subtype !== 'plain' && node.subtype !== 'html')) return;
    if (node.disposition?.type === 'attachment') return;
    if (this.root && this.textNodes.length > 0 && this.plainAlternativeCollected(this.root, node)) return;
    this.current = { node, chunks: [], size: 0 };
  }

  /** True when an ancestor of `node` is a multipart/alternative with a collected text/plain child other than node's branch. */
  private plainAlternativeCollected(root: MimeNode, node: MimeNode): boolean {
    const path = pathTo(root, node);
    for (let i = 0; path && i < path.length - 1; i++) {
      const parent = path[i]!;
      const branch = path[i + 1];
      if (parent.type !== 'multipart' || parent.subtype !== 'alternative') continue;
      if (parent.children?.some((child) => child !== branch && child.subtype === 'plain' && this.textNodes.includes(child))) return true;
    }
    return false;
  }

  runData(bytes: Uint8Array): void {
    const current = this.current;
    if (!current || current.size >= this.rawLimit) return;
    const take = Math.min(bytes.length, this.rawLimit - current.size);
    current.chunks.push(bytes.slice(0, take));
    current.size += take;
  }

  runEnd(): void {
    const current = this.current;
    this.current = null;
    if (!current || current.size === 0) return;
    const raw = Buffer.concat(current.chunks, current.size);
    const node = current.node;
    let text = decodeText(transferDecode(raw, node.encoding), node.params.charset);
    if (node.subtype === 'html') text = htmlText(text, this.maxHtmlDepth);
    text = text.trim();
    if (!text) return;
    this.texts.push(text);
    this.textNodes.push(node);
    this.textSize += text.length + 1;
  }

  /** The decoded text parts only (no headers, no file names), as collected so far. */
  bodyText(): string {
    return this.texts.join('\n');
  }

  /**
   * The body search text: attachment file names, then the text parts; NFC, at most `limit` chars. Of a
   * multipart/alternative with a text/plain part, only that part counts (the HTML version says the same again, and
   * indexing it twice doubled the index).
   */
  result(root: MimeNode): string {
    const names: string[] = [];
    const walk = (node: MimeNode): void => {
      if (node !== root) {
        const name = fileName(node);
        if (name) names.push(name);
      }
      for (const child of node.children ?? []) walk(child);
      if (node.message) walk(node.message.root);
    };
    walk(root);
    const skipped = otherAlternatives(root, new Set(this.textNodes));
    const texts = this.texts.filter((_, i) => !skipped.has(this.textNodes[i]!));
    const text = [...names, ...texts].filter(Boolean).join('\n').normalize('NFC');
    return text.length > this.limit ? text.slice(0, this.limit) : text;
  }
}

/** The nodes from `root` down to `node` (encapsulated messages included), or null when `node` is not in the tree. */
function pathTo(root: MimeNode, node: MimeNode): MimeNode[] | null {
  if (root === node) return [root];
  for (const child of [...(root.children ?? []), ...(root.message ? [root.message.root] : [])]) {
    const path = pathTo(child, node);
    if (path) return [root, ...path];
  }
  return null;
}

/** Text parts under the alternatives not chosen: in each multipart/alternative with a collected text/plain child. */
function otherAlternatives(root: MimeNode, collected: ReadonlySet<MimeNode>): Set<MimeNode> {
  const skipped = new Set<MimeNode>();
  const skipAll = (node: MimeNode): void => {
    skipped.add(node);
    for (const child of node.children ?? []) skipAll(child);
  };
  const walk = (node: MimeNode): void => {
    const children = node.children ?? [];
    if (node.type === 'multipart' && node.subtype === 'alternative') {
      const plain = children.find((child) => child.subtype === 'plain' && collected.has(child));
      if (plain) for (const child of children) if (child !== plain) skipAll(child);
    }
    for (const child of children) walk(child);
    if (node.message) walk(node.message.root);
  };
  walk(root);
  return skipped;
}
