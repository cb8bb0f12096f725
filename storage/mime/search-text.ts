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
  /** The node's parent, when leaveOutAlternatives() is on. */
  parent: MimeNode | null;
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
  /** Each multipart/alternative with a collected text/plain child: that child (the first one). */
  private readonly plainOf = new Map<MimeNode, MimeNode>();

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
    const path = this.root ? ancestry(this.root, node) : null;
    if (path && this.plainOf.size > 0 && this.otherAlternative(path)) return;
    this.current = { node, chunks: [], size: 0, parent: path && path.length > 1 ? path[path.length - 2]! : null };
  }

  /** True when an ancestor on `path` is a multipart/alternative whose collected text/plain child is off the path. */
  private otherAlternative(path: MimeNode[]): boolean {
    for (let i = 0; i < path.length - 1; i++) {
      const plain = this.plainOf.get(path[i]!);
      if (plain && plain !== path[i + 1]) return true;
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
    const parent = current.parent;
    if (node.subtype === 'plain' && parent?.type === 'multipart' && parent.subtype === 'alternative' && !this.plainOf.has(parent)) {
      this.plainOf.set(parent, node);
    }
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
    const text = [...names, ...this.chosenTexts(root)].filter(Boolean).join('\n').normalize('NFC');
    return text.length > this.limit ? text.slice(0, this.limit) : text;
  }

  /** The text parts result() keeps, in message order, without the attachment names (the source of the preview). */
  chosenTexts(root: MimeNode): string[] {
    const skipped = otherAlternatives(root, new Set(this.textNodes));
    return this.texts.filter((_, i) => !skipped.has(this.textNodes[i]!));
  }
}

/**
 * The nodes from `root` down to `node`, found by following `node.part` ("2.1": second child, then its first; an
 * encapsulated message is entered through its root), so the cost is the depth, not the size of the tree; null
 * when that walk does not end at `node` (the caller then simply collects the part).
 */
function ancestry(root: MimeNode, node: MimeNode): MimeNode[] | null {
  const path = [root];
  let at = root;
  if (node.part !== '') {
    for (const step of node.part.split('.')) {
      if (at.message) path.push((at = at.message.root));
      const next = at.children?.[Number(step) - 1];
      if (!next) return null;
      path.push((at = next));
    }
  }
  return at === node ? path : null;
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
