/**
 * Linear time: each family builds a hostile input of size n (deep nesting, long runs of one special character,
 * many tiny chunks) and the target must handle 8n in well under 64 times the time of n (a quadratic would take
 * 64×). The ratio allowed is generous (32×, half of a quadratic's 64×) because CI runs two test files at once on two cores, and inputs are
 * sized so n takes milliseconds: noise, not the algorithm, dominates below that (times of n under 5 ms count as
 * 5 ms, and 8n under 60 ms always passes).
 */
import { PassThrough } from 'node:stream';
import { CommandTokenizer } from '../../protocols/imap/tokenizer.ts';
import { parseSearch } from '../../protocols/imap/search.ts';
import { decodeModifiedUtf7, encodeModifiedUtf7 } from '../../protocols/imap/render.ts';
import { parseQuery } from '../../protocols/http/search-query.ts';
import { LineReader } from '../../protocols/net/line-reader.ts';
import { DotUnstuffer } from '../../protocols/net/dot-stuffing.ts';
import { ingestMessage } from '../../storage/mime/index.ts';
import type { ImapToken } from '../../protocols/imap/types.ts';
import { MemoryBlobs } from '../helpers/memory-blobs.ts';

export interface LinearFamily {
  readonly name: string;
  /** Base size n. */
  readonly n: number;
  readonly knownIssue?: string;
  /** Builds the input for size n and returns the work to time. */
  build(n: number): () => unknown | Promise<unknown>;
}

const enc = new TextEncoder();
const swallow = (fn: () => unknown) => () => {
  try {
    return fn();
  } catch {
    return null; // a refusal is fine: only the time to reach it matters
  }
};

async function lines(chunks: Uint8Array[], maxLineLength: number): Promise<number> {
  const socket = new PassThrough();
  const reader = new LineReader(socket, { maxLineLength });
  const done = (async () => {
    let n = 0;
    while ((await reader.readLine()) !== null) n++;
    return n;
  })();
  for (const c of chunks) socket.write(c);
  socket.end();
  return done;
}

export const FAMILIES: readonly LinearFamily[] = [
  {
    name: 'IMAP tokenizer: n nested lists',
    n: 2000,
    build: (n) => {
      const line = enc.encode(' ' + '('.repeat(n) + 'a' + ')'.repeat(n));
      return swallow(() => {
        const t = new CommandTokenizer();
        t.feed(line);
        return t.finish();
      });
    },
  },
  {
    name: 'IMAP tokenizer: a quoted string of n escapes',
    n: 20000,
    build: (n) => {
      const line = enc.encode(' "' + '\\"'.repeat(n) + '"');
      return swallow(() => new CommandTokenizer().feed(line));
    },
  },
  {
    name: 'IMAP tokenizer: n BODY[] sections with partials',
    n: 2000,
    build: (n) => {
      const line = enc.encode(' (' + 'BODY[1.2.HEADER.FIELDS (A B)]<0.10> '.repeat(n) + ')');
      return swallow(() => new CommandTokenizer().feed(line));
    },
  },
  {
    name: 'IMAP SEARCH: n keys ORed and NOTed',
    n: 2000,
    build: (n) => {
      const tokens: ImapToken[] = [];
      for (let i = 0; i < n; i++) tokens.push({ type: 'atom', value: 'OR' }, { type: 'atom', value: 'NOT' }, { type: 'atom', value: 'SEEN' });
      tokens.push({ type: 'atom', value: 'ALL' });
      return swallow(() => parseSearch(tokens, { utf8: false }));
    },
  },
  {
    name: 'IMAP SEARCH: n keys side by side, each a parenthesised list',
    n: 5000,
    build: (n) => {
      const tokens: ImapToken[] = [];
      for (let i = 0; i < n; i++) tokens.push({ type: 'list', items: [{ type: 'atom', value: 'FROM' }, { type: 'string', value: 'x', bytes: enc.encode('x'), literal: false }] });
      return swallow(() => parseSearch(tokens, { utf8: false }));
    },
  },
  {
    name: 'modified UTF-7: n non-ASCII characters encoded and decoded',
    n: 20000,
    build: (n) => {
      const text = 'äöü日本'.repeat(n / 5);
      return () => decodeModifiedUtf7(encodeModifiedUtf7(text));
    },
  },
  {
    name: 'modified UTF-7: n escapes and shifts, then an unterminated one',
    n: 5000,
    build: (n) => {
      const name = 'a&-&AOQ-'.repeat(n) + '&AOQ';
      return swallow(() => decodeModifiedUtf7(name));
    },
  },
  {
    name: 'HTTP q: n unterminated quotes and operators',
    n: 20000,
    build: (n) => {
      const q = '-a:"'.repeat(n);
      return swallow(() => parseQuery(q));
    },
  },
  {
    name: 'HTTP q: n spaces then a term',
    n: 50000,
    build: (n) => {
      const q = ' '.repeat(n) + 'x' + '\t'.repeat(n);
      return swallow(() => parseQuery(q));
    },
  },
  {
    name: 'line reader: one line of n bytes in 1-byte chunks',
    n: 4000,
    build: (n) => {
      const chunks = Array.from({ length: n }, () => enc.encode('a'));
      chunks.push(enc.encode('\r\n'));
      return () => lines(chunks, 1 << 20);
    },
  },
  {
    name: 'line reader: n short lines in one chunk',
    n: 20000,
    build: (n) => {
      const chunk = enc.encode('NOOP\r\n'.repeat(n));
      return () => lines([chunk], 1024);
    },
  },
  {
    name: 'dot unstuffing: n dot lines',
    n: 50000,
    build: (n) => {
      const data = enc.encode('..x\r\n'.repeat(n) + '.\r\n');
      return () => new DotUnstuffer().push(data);
    },
  },
  {
    name: 'MIME: n empty parts in one multipart',
    n: 2000,
    build: (n) => {
      const msg = enc.encode('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n\r\nx\r\n'.repeat(n) + '--b--\r\n');
      return () => ingestMessage(msg, new MemoryBlobs(), { blobThreshold: 1 << 20 });
    },
  },
  {
    name: 'MIME: n nested multiparts (depth limit applies)',
    n: 200,
    build: (n) => {
      let body = 'x';
      for (let i = n; i > 0; i--) body = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${body}\r\n--b${i}--\r\n`;
      const msg = enc.encode(body);
      return () => ingestMessage(msg, new MemoryBlobs(), { blobThreshold: 1 << 20 });
    },
  },
  {
    name: 'MIME: a header of n folded lines',
    n: 5000,
    build: (n) => {
      const msg = enc.encode('Subject: a' + '\r\n b'.repeat(n) + '\r\n\r\nbody\r\n');
      return () => ingestMessage(msg, new MemoryBlobs(), { blobThreshold: 1 << 20 });
    },
  },
];

async function timeOf(work: () => unknown | Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await work();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

/**
 * Times size n and 8n (best of 5 each, after a warm-up); the ratio and both times. Times of n under 5 ms count as
 * 5 ms: below that, timer resolution and GC pauses decide the ratio, not the algorithm.
 */
export async function measure(family: LinearFamily, scale = 1): Promise<{ small: number; large: number; ratio: number; ok: boolean }> {
  const n = Math.max(1, Math.round(family.n * scale));
  const smallWork = family.build(n);
  const largeWork = family.build(8 * n);
  await smallWork(); // warm-up (JIT)
  const small = await timeOf(smallWork);
  const large = await timeOf(largeWork);
  const ratio = large / Math.max(small, 5);
  return { small, large, ratio, ok: large < 60 || ratio < 32 };
}
