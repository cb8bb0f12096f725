/**
 * Message rewriting: a config-driven header editor run as a streaming `message.prepare` transform (stage
 * TRANSFORM), so the stored bytes are the rewritten bytes and size, quota (checked again at `message.store`),
 * the MIME index and search all see the result.
 *
 *   plugins: [['rewrite', {
 *     protocols: ['lmtp'],                                  // which ways in (session protocol) are rewritten
 *     remove: ['X-Originating-IP'],                         // drop every field of these names
 *     replace: [{ key: 'X-Mailer', value: 'hidden' }],      // drop them, then add this one in place of the first
 *     add: [{ key: 'X-Scanned-By', value: 'wildduck' }],    // added on top of the header
 *     externalTag: { tag: '[EXT]', internalDomains: ['example.com'] },  // tag subjects of mail from elsewhere
 *   }]]
 *
 * The stream is transformed without holding the message: bytes are buffered only up to the end of the header
 * block (at most `maxHeaderBytes`; a larger header is passed through untouched), the rewritten header is
 * emitted, and the body chunks follow as they arrive. Header bytes are handled byte for byte (latin1), so 8-bit
 * headers survive; option values must be printable ASCII (encode anything else with RFC 2047 yourself).
 *
 * A code plugin transforms a message the same way: tap `message.prepare` and return a new
 * AsyncIterable<Uint8Array> (`transformHeader` below is reusable); throw `VerdictError` inside the stream to
 * refuse the message.
 */
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { TRANSFORM } from '../hooks/stages.ts';
import type { MessageSource } from '../hooks/types.ts';

export const REWRITE_PLUGIN = 'rewrite';

const ascii = z.string().regex(/^[\x20-\x7e\t]*$/, 'must be printable ASCII');
const fieldName = z.string().regex(/^[!-9;-~]+$/, 'must be a header field name');
const field = z.object({ key: fieldName, value: ascii }).strict();

const optionsSchema = z
  .object({
    protocols: z.array(z.enum(['imap', 'pop3', 'lmtp', 'http', 'internal'])).min(1),
    remove: z.array(fieldName),
    replace: z.array(field),
    add: z.array(field),
    externalTag: z.object({ tag: ascii.min(1), internalDomains: z.array(z.string().min(1)) }).strict().nullable(),
    maxHeaderBytes: z.number().int().positive(),
  })
  .strict();

export type RewriteOptions = z.output<typeof optionsSchema>;

const latin1 = new TextDecoder('latin1');

function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Where the header block ends (start of the blank line), or -1 while not seen. */
function headerEnd(bytes: Uint8Array): number {
  if (bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a)) return 0;
  for (let i = 0; i < bytes.length - 1; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i + 1;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 1;
  }
  return -1;
}

/**
 * Streams `source`, passing its header block (raw text, latin1, with line endings) through `edit`; body bytes
 * are not touched or held. Headers larger than `maxHeaderBytes` pass unedited.
 */
export async function* transformHeader(source: MessageSource, edit: (header: string) => string, maxHeaderBytes: number): MessageSource {
  let head: Uint8Array = new Uint8Array(0);
  const iterator = source[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      // no blank line: the whole message is header
      if (head.length) yield latin1Bytes(edit(latin1.decode(head)));
      return;
    }
    head = concat(head, next.value);
    const end = headerEnd(head);
    if (end >= 0) {
      yield latin1Bytes(edit(latin1.decode(head.subarray(0, end))));
      if (end < head.length) yield head.subarray(end);
      break;
    }
    if (head.length > maxHeaderBytes) {
      yield head;
      break;
    }
  }
  for (;;) {
    const next = await iterator.next();
    if (next.done) return;
    yield next.value;
  }
}

interface Field {
  name: string;
  raw: string;
}

function splitFields(header: string): Field[] {
  const fields: Field[] = [];
  for (const line of header.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if ((line[0] === ' ' || line[0] === '\t') && fields.length) fields[fields.length - 1]!.raw += line;
    else fields.push({ name: line.slice(0, Math.max(0, line.indexOf(':'))).trim().toLowerCase(), raw: line });
  }
  return fields;
}

function senderDomain(fields: Field[]): string | null {
  const from = fields.find((f) => f.name === 'from');
  if (!from) return null;
  const value = from.raw.slice(from.raw.indexOf(':') + 1);
  const address = /<([^<>]*)>/.exec(value)?.[1] ?? value;
  const at = address.lastIndexOf('@');
  return at < 0 ? null : address.slice(at + 1).trim().replace(/[>\s].*$/, '').toLowerCase();
}

/** The header edit the options describe (pure: header text in, header text out). */
export function headerEditor(options: Pick<RewriteOptions, 'remove' | 'replace' | 'add' | 'externalTag'>): (header: string) => string {
  const remove = new Set(options.remove.map((n) => n.toLowerCase()));
  const internal = new Set((options.externalTag?.internalDomains ?? []).map((d) => d.toLowerCase()));
  const isInternal = (domain: string) => [...internal].some((d) => domain === d || domain.endsWith('.' + d));
  return (header) => {
    const eol = header.includes('\r\n') || header === '' ? '\r\n' : '\n';
    let fields = splitFields(header).filter((f) => !remove.has(f.name));
    for (const { key, value } of options.replace) {
      const name = key.toLowerCase();
      const at = fields.findIndex((f) => f.name === name);
      fields = fields.filter((f) => f.name !== name);
      fields.splice(at < 0 ? fields.length : at, 0, { name, raw: `${key}: ${value}${eol}` });
    }
    if (options.externalTag) {
      const domain = senderDomain(fields);
      if (domain === null || !isInternal(domain)) {
        const tag = options.externalTag.tag;
        const subject = fields.find((f) => f.name === 'subject');
        if (!subject) fields.push({ name: 'subject', raw: `Subject: ${tag}${eol}` });
        else {
          const colon = subject.raw.indexOf(':');
          const value = subject.raw.slice(colon + 1).replace(/^[ \t]*/, '');
          if (!value.startsWith(tag)) subject.raw = `${subject.raw.slice(0, colon)}: ${tag} ${value}`;
        }
      }
    }
    const added = options.add.map(({ key, value }) => `${key}: ${value}${eol}`).join('');
    let out = added + fields.map((f) => f.raw).join('');
    if (out && !out.endsWith('\n')) out += eol;
    return out;
  };
}

export const rewritePlugin = definePlugin<RewriteOptions>({
  description: 'Adds, removes and replaces header fields and tags subjects of external mail (streaming message.prepare)',
  optionsSchema,
  defaults: { protocols: ['lmtp'], remove: [], replace: [], add: [], externalTag: null, maxHeaderBytes: 256 * 1024 },
  create(options) {
    const edit = headerEditor(options);
    const protocols = new Set<string>(options.protocols);
    return {
      name: REWRITE_PLUGIN,
      apply(api: PluginApi) {
        api.hooks.message.prepare.tap({ stage: TRANSFORM }, (source, ctx) =>
          protocols.has(ctx.session.protocol) ? transformHeader(source, edit, options.maxHeaderBytes) : source,
        );
      },
    };
  },
});
