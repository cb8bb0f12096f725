/**
 * Message-IDs for threading (RFC 5256 §3 REFERENCES): the References field's text as the search index stored it
 * (`name: decoded value` lines, SearchHeaders.headers), and the msg-ids in a References / In-Reply-To value.
 */

/** The first References field of stored search header text, unfolded; null when the message has none. */
export function referencesField(headers: string | null | undefined): string | null {
  if (!headers) return null;
  const match = /^references: ?(.*)$/im.exec(headers);
  return match ? match[1]!.replace(/\s+/g, ' ').trim() : null;
}

/**
 * The msg-ids of a References or In-Reply-To value, in order, without their angle brackets: each `<...>` whose
 * inside holds no whitespace and no further `<` (RFC 5256: invalid ones are ignored). Comments and phrases between
 * them (In-Reply-To often carries `"Ann's message of ..."`) are skipped.
 */
export function messageIds(value: string | null | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const match of value.matchAll(/<([^<>\s]+)>/g)) out.push(match[1]!);
  return out;
}

/** A Message-ID header value as a thread key (brackets removed), or null when it holds no valid msg-id. */
export function messageIdKey(value: string | null | undefined): string | null {
  return messageIds(value)[0] ?? null;
}
