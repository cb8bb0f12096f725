/**
 * What BODY[...] and BINARY[...] sections share: the `<start.length>` partial of a FETCH item cut out of a section of
 * `total` bytes (RFC 3501 §6.4.5, RFC 3516), and bytes already in memory as a one-chunk stream.
 */

/** The byte range `[start, end)` a partial names within `total` bytes (all of it without a partial). */
export function partialRange(partial: { start: number; length: number | null } | null, total: number): { start: number; end: number } {
  if (!partial) return { start: 0, end: total };
  const start = Math.min(partial.start, total);
  return { start, end: partial.length === null ? total : Math.min(total, start + partial.length) };
}

export async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
