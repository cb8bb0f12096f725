/**
 * A linear look at HTML before it reaches an HTML parser. htmlparser2 (under html-to-text and sanitize-html)
 * is linear in the number of elements but not in their nesting: 100,000 unclosed `<div>` (500 KB) took
 * 10 s to turn into text, 300,000 took 48 s, all of it holding the event loop, and a message carrying that
 * can be delivered by anyone. Deeper than the limit, callers fall back to `stripTags`.
 */

/** `limits.maxHtmlDepth` default: far deeper than real mail (a few dozen levels), far from the slow cases. */
export const DEFAULT_MAX_HTML_DEPTH = 256;

/** Elements that never nest (void) or that the parser closes when the next one opens (p, li, td, …). */
const FLAT = new Set([
  'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr',
  'p', 'li', 'dt', 'dd', 'tr', 'td', 'th', 'option', 'optgroup', 'rb', 'rt', 'rp', 'thead', 'tbody', 'tfoot', 'colgroup', 'caption',
]);

const isLetter = (code: number): boolean => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/**
 * True when elements in `html` nest deeper than `max` (open tags minus close tags, elements in FLAT not
 * counted). An estimate that errs on the deep side for sloppy HTML, in one pass.
 */
export function htmlNestedDeeperThan(html: string, max: number): boolean {
  let depth = 0;
  for (let at = html.indexOf('<'); at >= 0; at = html.indexOf('<', at + 1)) {
    const next = html.charCodeAt(at + 1);
    const closing = next === 47; // '/'
    const start = closing ? at + 2 : at + 1;
    let end = start;
    while (end < html.length && end - start < 16 && (isLetter(html.charCodeAt(end)) || (end > start && html.charCodeAt(end) >= 48 && html.charCodeAt(end) <= 57))) end++;
    if (end === start) continue;
    const name = html.slice(start, end).toLowerCase();
    if (FLAT.has(name)) continue;
    if (closing) depth = Math.max(0, depth - 1);
    else if (++depth > max) return true;
  }
  return false;
}

/** Text of HTML without a parser: tags become spaces (linear: a tag never spans another `<`). */
export function stripTags(html: string): string {
  return html.replace(/<[^<>]*>/g, ' ');
}
