/**
 * POP3 replies (RFC 1939, RESP-CODES RFC 2449, AUTH-RESP-CODE RFC 3206). Verdicts become wire replies here and
 * nowhere else.
 */
import type { Verdict } from '../../hooks/verdict.ts';

export function replyText(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

export function verdictReply(verdict: Verdict): string {
  const text = replyText(verdict.message);
  switch (verdict.code) {
    case 'AUTHENTICATIONFAILED':
    case 'AUTHORIZATIONFAILED':
    case 'EXPIRED':
    case 'PRIVACYREQUIRED':
      return `-ERR [AUTH] ${text}`;
    case 'INUSE':
      return `-ERR [IN-USE] ${text}`;
  }
  if (verdict.action === 'tempfail' || verdict.code === 'LIMIT') return `-ERR [SYS/TEMP] ${text}`;
  if (verdict.action === 'disconnect') return `-ERR ${text}`;
  return `-ERR [SYS/PERM] ${text}`;
}
