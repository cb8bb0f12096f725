/**
 * The header text a search index keeps (SearchHeaders): the decoded Subject, the parsed addresses of From, To, Cc
 * and Bcc (display names and addr-specs as ENVELOPE parses them: comments inside an address removed, so
 * `SEARCH FROM user@domain.org` finds `<user (comment)@ (comment) domain.org>`, and a comment after a bare address
 * kept as its name, so `SEARCH FROM "Real Name"` finds `user@domain.org (Real Name)`), and every field as
 * `name: decoded value` for TEXT. All NFC.
 */
import type { Envelope, EnvelopeAddress, SearchHeaders } from '../ports.ts';
import { parseAddressList } from './envelope.ts';
import { decodeWords, getHeader, getHeaders } from './headers.ts';
import type { HeaderField } from './headers.ts';

function addressLine(address: EnvelopeAddress): string | null {
  if (address.host === null) return address.mailbox === null ? null : `${decodeWords(address.mailbox)}:`; // group start / end
  const spec = `${address.mailbox ?? ''}${address.host ? `@${address.host}` : ''}`.replace(/\s+/g, '');
  const name = address.name ? decodeWords(address.name).trim() : '';
  if (!name) return spec;
  return spec ? `${name} <${spec}>` : name;
}

/**
 * A field's addresses as lines, or null when the message has no such field. `parsed`: the field's values already
 * parsed (the envelope's list), else they are parsed here: the same parse either way (address-list.ts), so a comment
 * inside an address is dropped and a comment standing for a display name is searched as the name.
 */
export function addressText(fields: HeaderField[], key: string, parsed?: EnvelopeAddress[] | null): string | null {
  const values = getHeaders(fields, key);
  if (values.length === 0) return null;
  const list = (parsed !== undefined ? parsed : parseAddressList(values)) ?? [];
  return list
    .map(addressLine)
    .filter((line): line is string => line !== null)
    .join('\n')
    .normalize('NFC');
}

/** SearchHeaders of a message's top-level header fields; `envelope` (buildEnvelope of the same fields) saves a parse. */
export function searchHeaders(fields: HeaderField[], envelope?: Envelope): SearchHeaders {
  const subject = getHeader(fields, 'subject');
  return {
    subject: subject === null ? null : decodeWords(subject).normalize('NFC'),
    from: addressText(fields, 'from', envelope?.from),
    to: addressText(fields, 'to', envelope?.to),
    cc: addressText(fields, 'cc', envelope?.cc),
    bcc: addressText(fields, 'bcc', envelope?.bcc),
    headers: fields.map((field) => `${field.key}: ${decodeWords(field.value)}`).join('\n').normalize('NFC'),
  };
}
