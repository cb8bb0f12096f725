/**
 * RFC 3501 ENVELOPE from a header block: raw (unfolded, not decoded) values, addresses split into
 * name / adl / mailbox / host, groups as IMAP represents them. Address syntax is nodemailer's addressparser.
 */
import addressparser from 'nodemailer/lib/addressparser';
import type { Address } from 'nodemailer/lib/addressparser';
import type { Envelope, EnvelopeAddress } from '../ports.ts';
import { getHeader, getHeaders } from './headers.ts';
import type { HeaderField } from './headers.ts';

function mailboxAddress(name: string, address: string): EnvelopeAddress {
  let mailbox = address;
  let host = '';
  const at = address.lastIndexOf('@');
  if (at >= 0) {
    mailbox = address.slice(0, at);
    host = address.slice(at + 1);
  } else if (!address && name && !/\s/.test(name)) {
    // a bare word ("undisclosed") is a local part without domain, not a display name
    return { name: null, adl: null, mailbox: name, host: '' };
  }
  // host is never null for a mailbox: IMAP reserves a NIL host for group markers
  return { name: name || null, adl: null, mailbox, host };
}

function flatten(list: Address[], out: EnvelopeAddress[]): void {
  for (const entry of list) {
    if (entry.group !== undefined) {
      out.push({ name: null, adl: null, mailbox: entry.name, host: null }); // group start
      flatten(entry.group, out);
      out.push({ name: null, adl: null, mailbox: null, host: null }); // group end
    } else {
      out.push(mailboxAddress(entry.name ?? '', entry.address ?? ''));
    }
  }
}

/** Parses an address header value (several occurrences joined with commas). Null when empty. */
export function parseAddressList(values: string[]): EnvelopeAddress[] | null {
  const value = values.filter((item) => item.trim()).join(', ');
  if (!value.trim()) return null;
  let parsed: Address[];
  try {
    parsed = addressparser(value);
  } catch {
    return null;
  }
  const out: EnvelopeAddress[] = [];
  flatten(parsed, out);
  return out.length > 0 ? out : null;
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
