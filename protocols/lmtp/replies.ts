/**
 * LMTP replies (RFC 2033, RFC 5321 codes with RFC 3463 enhanced status codes). Verdicts become wire replies here
 * and nowhere else.
 */
import type { Verdict } from '../../hooks/verdict.ts';

/** Reply text safe for one line: no CR/LF, bounded. */
export function replyText(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

/**
 * A protocol-neutral verdict as an LMTP reply. Quota is temporary (the MTA keeps the message and retries), a
 * plugin's temporary verdict is 451 4.3.0, a permanent refusal 550 5.7.1.
 */
export function verdictReply(verdict: Verdict): string {
  const text = replyText(verdict.message);
  if (verdict.action === 'disconnect') return `421 4.3.2 ${text}`;
  switch (verdict.code) {
    case 'OVERQUOTA':
      return `452 4.2.2 ${text}`;
    case 'TOOBIG':
      return `552 5.3.4 ${text}`;
    case 'NONEXISTENT':
      return verdict.action === 'tempfail' ? `450 4.1.1 ${text}` : `550 5.1.1 ${text}`;
    case 'CLIENTBUG':
      return `553 5.1.3 ${text}`;
    case 'LIMIT':
      return `451 4.7.1 ${text}`;
  }
  if (verdict.action === 'tempfail') return `451 4.3.0 ${text}`;
  return `550 5.7.1 ${text}`;
}

/** A multi-line reply: every line but the last as `code-text`. */
export function multiline(code: number, lines: readonly string[]): string {
  return lines.map((line, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${replyText(line)}\r\n`).join('');
}
