/**
 * The one text normalization search compares with: NFC, then Unicode lowercase. Stored search text is kept in NFC
 * (storage/mime) so an index with its own case folding (SQLite FTS5 trigram) agrees with this on needles and text.
 */
export function fold(text: string): string {
  return text.normalize('NFC').toLowerCase();
}
