/**
 * Deterministic test messages: message `i` always has the same bytes. Every third one carries an
 * attachment large enough to be stored as a blob, and every fifth shares one attachment with the others.
 */
const encoder = new TextEncoder();

function base64Lines(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  return b64.replace(/.{76}/g, '$&\r\n');
}

function pseudoRandom(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function generatedMessage(i: number): Uint8Array {
  const head =
    `From: Sender ${i} <sender${i}@example.com>\r\n` +
    `To: user@example.com\r\n` +
    `Subject: generated ${i}\r\n` +
    `Message-ID: <gen-${i}@example.com>\r\n` +
    `Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n` +
    `MIME-Version: 1.0\r\n`;
  if (i % 3 !== 0) {
    return encoder.encode(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message ${i}.\r\n`);
  }
  const attachment = i % 5 === 0 ? pseudoRandom(5, 40_000) : pseudoRandom(i, 30_000 + i);
  return encoder.encode(
    `${head}Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n` +
      `--b${i}\r\nContent-Type: text/plain\r\n\r\nSee attached (${i}).\r\n` +
      `--b${i}\r\nContent-Type: application/octet-stream; name="data${i}.bin"\r\nContent-Disposition: attachment; filename="data${i}.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
      base64Lines(attachment) +
      `\r\n--b${i}--\r\n`,
  );
}

/** Index encoded in the Subject of a generated message, or -1. */
export function generatedIndex(subject: string): number {
  const m = /^generated (\d+)$/.exec(subject);
  return m ? Number(m[1]) : -1;
}
