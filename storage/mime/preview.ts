/**
 * The message preview (RFC 8970 PREVIEW), made once at ingest from the decoded text the search index collects: the
 * first text part (of a multipart/alternative the text/plain half), with quoted lines (`>`) and the signature
 * (after a `-- ` line) left out, white space and control characters collapsed to single spaces, trimmed, and cut
 * to 256 characters (code points, never half a surrogate pair). "" when the message has no text.
 */

/** RFC 8970 §3: a preview is at most 256 characters. */
export const PREVIEW_LENGTH = 256;

/** The preview of `texts` (decoded text parts in message order). */
export function makePreview(texts: readonly string[]): string {
  for (const text of texts) {
    const preview = previewOf(text);
    if (preview !== '') return preview;
  }
  return '';
}

/** The preview of one text. */
export function previewOf(text: string): string {
  const kept: string[] = [];
  let length = 0;
  for (const line of text.split(/\r?\n/)) {
    if (line === '-- ' || line === '--') break; // the signature separator (RFC 3676 §4.3)
    if (/^\s*>/.test(line)) continue; // quoted text
    kept.push(line);
    length += line.length + 1;
    if (length > PREVIEW_LENGTH * 8) break; // enough to fill a preview even after collapsing white space
  }
  // eslint-disable-next-line no-control-regex
  const collapsed = kept.join(' ').replace(/[\s\x00-\x1f\x7f\u200b\ufeff]+/g, ' ').trim().normalize('NFC');
  const chars = Array.from(collapsed);
  return chars.length <= PREVIEW_LENGTH ? collapsed : chars.slice(0, PREVIEW_LENGTH).join('').trimEnd();
}
