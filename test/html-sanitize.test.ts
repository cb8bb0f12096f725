/**
 * The HTTP message view's HTML sanitizer (protocols/http/html.ts) against the XSS vectors of sanitize-html's own
 * advisories. sanitize-html is pinned at 2.17.5, the last release whose engines field admits Node 20 (README,
 * "Dependencies"): these cases show the allow-list this project passes it is not open to what 2.17.6 and 2.17.7
 * fixed, and fail if a later change to the allow-list or the version makes it so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeMessageHtml } from '../protocols/http/html.ts';

const clean = (html: string) => sanitizeMessageHtml(html, { allowRemote: false }).html;

/** True when the output could run code in a browser: a script element, or a tag with an on* handler or a javascript: URL. */
function executable(html: string): boolean {
  const tags = html.match(/<[a-z][^>]*>/gi) ?? []; // real tags only: escaped text (&lt;img ...&gt;) is inert
  return tags.some((tag) => /^<script/i.test(tag) || /\son[a-z]+\s*=/i.test(tag) || /=\s*["']?\s*javascript:/i.test(tag));
}

describe('HTML sanitizing (sanitize-html 2.17.5 with our allow-list)', () => {
  it('drops scripts, handlers and javascript: links, keeps formatting', () => {
    const out = clean('<p onclick="x()">Hi <b>there</b><script>alert(1)</script><a href="javascript:evil()">x</a></p>');
    assert.ok(!executable(out), out);
    assert.match(out, /<p>Hi <b>there<\/b>/);
  });

  it('does not re-emit markup from a textarea or xmp inside svg or math (fixed upstream in 2.17.6)', () => {
    for (const html of [
      '<svg><textarea><img src=x onerror=alert(1)></textarea></svg>',
      '<math><xmp><img src=x onerror=alert(1)></xmp></math>',
      '<svg><xmp><a href="javascript:alert(1)">x</a></xmp></svg>',
      '<math><mtext><textarea><img src=x onerror=alert(1)></textarea></mtext></math>',
    ]) {
      const out = clean(html);
      assert.ok(!executable(out), `${html} -> ${out}`);
      assert.ok(!/<img/i.test(out), `${html} -> ${out}`); // as escaped text at most
    }
  });

  it('drops svg animation elements that could set a javascript: URL (fixed upstream in 2.17.7)', () => {
    const html =
      '<svg><a><animate attributeName="href" values="javascript:alert(1)"/><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>';
    const out = clean(html);
    assert.ok(!executable(out), out);
    assert.ok(!/<(animate|set|svg)/i.test(out), out);
  });
});
