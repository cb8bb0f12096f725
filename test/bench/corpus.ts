/**
 * The bench's deterministic mail corpora: message `i` always has the same bytes (CRLF line ends).
 *
 * - `ingestMessage(i)`: like the corpus of issue 10. 76 % multipart/alternative (text + HTML) of 2–20 KB, 24 %
 *   multipart/mixed with one attachment of 50 KB–2 MB (log-uniform, so ~0.5 MB on average) drawn from a pool of
 *   ATTACHMENT_POOL attachments that repeats across messages. About 220 KB per message on average.
 * - `smallMessage(i)`: 1–3 KB text/plain for the large mailbox, with subjects, senders and body words varied
 *   enough that SEARCH SUBJECT / FROM / TEXT each match a small share of the mailbox (see SEARCH_TERMS).
 */

export const ATTACHMENT_POOL = 24;

/** A small, fast, seedable PRNG (mulberry32): same seed, same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'account agenda answer april archive budget calendar campaign chapter client contract coffee dinner draft ' +
  'estimate feedback figure garden harbor invoice journey kitchen ladder lesson margin meeting notebook office ' +
  'orange package parcel planet pocket project quarter rabbit receipt report review river schedule season ' +
  'shipment signal station summary supply ticket timber travel update valley vendor voyage window winter yellow'
).split(' ');
const FIRST = 'alice bob carol dave erin frank grace heidi ivan judy mallory nina oscar peggy rupert sybil trent victor walter zoe'.split(' ');
const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.test', 'corp.test'];

/** Terms the large-mailbox searches look for: each matches roughly 1–2 % of smallMessage()s. */
export const SEARCH_TERMS = { subject: 'quarterly', from: 'mallory.k', text: 'zeppelin' } as const;

function words(rand: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return out.join(' ');
}

/** Wraps words into CRLF lines of at most ~72 characters. */
function paragraph(text: string): string {
  return text.replace(/(.{1,72})(\s|$)/g, '$1\r\n');
}

function base64Lines(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/.{76}/g, '$&\r\n');
}

function randomBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const rand = prng(seed);
  for (let i = 0; i < length; i += 4) {
    const v = Math.floor(rand() * 4294967296);
    out[i] = v & 0xff;
    out[i + 1] = (v >>> 8) & 0xff;
    out[i + 2] = (v >>> 16) & 0xff;
    out[i + 3] = (v >>> 24) & 0xff;
  }
  return out;
}

const pool = new Map<number, string>();
/** Attachment `k` of the pool, base64 in lines (incompressible bytes, like most real attachments). */
export function attachmentSize(k: number): number {
  const rand = prng(1_000_003 * (k + 1));
  return Math.round(50_000 * Math.exp(rand() * Math.log(40))); // 50 KB .. 2 MB, log-uniform
}
function attachment(k: number): string {
  let b64 = pool.get(k);
  if (!b64) {
    b64 = base64Lines(randomBytes(k + 7, attachmentSize(k)));
    pool.set(k, b64);
  }
  return b64;
}

const encoder = new TextEncoder();

function head(i: number, rand: () => number, subject: string, extra: string): string {
  const name = FIRST[Math.floor(rand() * FIRST.length)]!;
  const domain = DOMAINS[Math.floor(rand() * DOMAINS.length)]!;
  const day = 1 + (i % 28);
  return (
    `From: ${name[0]!.toUpperCase()}${name.slice(1)} Sender <${name}.${String.fromCharCode(97 + (i % 26))}@${domain}>\r\n` +
    `To: Bench User <bench@example.com>\r\n` +
    `Subject: ${subject}\r\n` +
    `Date: ${['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][i % 7]}, ${day} Nov 2026 ${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00 +0000\r\n` +
    `Message-ID: <bench-${i}@${domain}>\r\n` +
    `MIME-Version: 1.0\r\n` +
    extra
  );
}

export function ingestMessage(i: number): Uint8Array {
  const rand = prng(i * 7919 + 17);
  const subject = `${words(rand, 3 + Math.floor(rand() * 5))} #${i}`;
  if (rand() < 0.76) {
    const textSize = 800 + Math.floor(rand() * 7600); // text and HTML together 2–20 KB
    const text = paragraph(words(rand, Math.ceil(textSize / 7)));
    const html = `<html><body>\r\n${text.split('\r\n').filter(Boolean).map((l) => `<p>${l}</p>`).join('\r\n')}\r\n</body></html>\r\n`;
    const b = `alt-${i}`;
    return encoder.encode(
      head(i, rand, subject, `Content-Type: multipart/alternative; boundary="${b}"\r\n`) +
        `\r\n--${b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${text}` +
        `--${b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${html}` +
        `--${b}--\r\n`,
    );
  }
  const k = Math.floor(rand() * ATTACHMENT_POOL);
  const b = `mix-${i}`;
  return encoder.encode(
    head(i, rand, subject, `Content-Type: multipart/mixed; boundary="${b}"\r\n`) +
      `\r\n--${b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${paragraph(words(rand, 60))}` +
      `--${b}\r\nContent-Type: application/pdf; name="file${k}.pdf"\r\nContent-Disposition: attachment; filename="file${k}.pdf"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${attachment(k)}\r\n--${b}--\r\n`,
  );
}

export function smallMessage(i: number): Uint8Array {
  const rand = prng(i * 104_729 + 3);
  const subject = rand() < 0.015 ? `${SEARCH_TERMS.subject} ${words(rand, 3)}` : words(rand, 2 + Math.floor(rand() * 5));
  let body = words(rand, 150 + Math.floor(rand() * 300));
  if (rand() < 0.015) body += ` ${SEARCH_TERMS.text} ${words(rand, 5)}`;
  return encoder.encode(head(i, rand, subject, 'Content-Type: text/plain; charset=utf-8\r\n') + `\r\n${paragraph(body)}`);
}

/** `bytes` dot-stuffed and terminated for LMTP/SMTP DATA. */
export function dataBlock(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1');
  const stuffed = (text.startsWith('.') ? '.' : '') + text.replace(/\r\n\./g, '\r\n..');
  return Buffer.from(stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n', 'latin1');
}
