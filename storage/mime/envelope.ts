/**
 * RFC 3501 ENVELOPE from a header block: raw (unfolded, not decoded) values, addresses split into
 * name / adl / mailbox / host, groups as IMAP represents them. Address syntax: address-list.ts.
 */
import type { Envelope, EnvelopeAddress } from '../ports.ts';
import { parseAddresses } from './address-list.ts';
import { getHeader, getHeaders } from './headers.ts';
import type { HeaderField } from './headers.ts';

/** Parses an address header value (several occurrences joined with commas). Null when empty. */
export function parseAddressList(values: string[]): EnvelopeAddress[] | null {
  const value = values.filter((item) => item.trim()).join(', ');
  if (!value.trim()) return null;
  return parseAddresses(value);
}

/** Builds the envelope. Sender and Reply-To default to From, as RFC 3501 requires of the server. */
export function buildEnvelope(fields: HeaderField[]): Envelope {
  const from = parseAddressList(getHeaders(fields, 'from'));
  return {
    date: getHeader(fields, 'date'),
    subject: getHeader(fields, 'subject'),
    from,
    sender: parseAddressList(getHeaders(fields, 'sender')) ?? from,
    replyTo: parseAddressList(getHeaders(fields, 'reply-to')) ?? from,
    to: parseAddressList(getHeaders(fields, 'to')),
    cc: parseAddressList(getHeaders(fields, 'cc')),
    bcc: parseAddressList(getHeaders(fields, 'bcc')),
    inReplyTo: getHeader(fields, 'in-reply-to'),
    messageId: getHeader(fields, 'message-id'),
  };
}

/** Message ids (`<…>`) found in a header value, in order. */
export function messageIds(value: string | null): string[] {
  if (!value) return [];
  const ids = value.match(/<[^<>\s]+>/g);
  if (ids) return ids;
  const bare = value.trim();
  return bare && !/\s/.test(bare) ? [bare] : [];
}
