/**
 * Client input that reaches a regular expression or a substring search (issue 9, defect 1 audit): each of
 * these runs on a long hostile input in linear time. The time bound is generous (quadratic behaviour on
 * these sizes takes many seconds; linear takes milliseconds) so it holds on a loaded CI machine.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emailAddress } from '../storage/delivery-settings.ts';
import { parseQuery } from '../protocols/http/search-query.ts';
import { textTerms } from '../plugins/filters.ts';
import { sentDay } from '../storage/search/evaluate.ts';
import { htmlNestedDeeperThan, stripTags } from '../storage/mime/html-depth.ts';
import { ingestMessage } from '../storage/mime/ingest.ts';
import { sanitizeMessageHtml } from '../protocols/http/html.ts';
import { htmlAsText } from '../protocols/http/message-view.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';

function quickly<T>(what: string, run: () => T, boundMs = 1500): T {
  const started = Date.now();
  const result = run();
  const elapsed = Date.now() - started;
  assert.ok(elapsed < boundMs, `${what} took ${elapsed} ms`);
  return result;
}

describe('hostile input to regular expressions', () => {
  it('validates a forward address made of a long run of dots in linear time', () => {
    // quadratic before: 8,000 dots took 150 ms, a 1 MB request body would have taken most of an hour
    const hostile = 'a@' + '.'.repeat(200_000) + ' x';
    assert.equal(quickly('emailAddress', () => emailAddress.safeParse(hostile)).success, false);
    assert.equal(emailAddress.safeParse('User@Example.com').data, 'user@example.com');
    assert.equal(emailAddress.safeParse('a@b.c.d').success, true);
    assert.equal(emailAddress.safeParse('a@bc').success, false);
    assert.equal(emailAddress.safeParse('a@b.').success, false);
    assert.equal(emailAddress.safeParse('a@.b').success, false);
  });

  it('parses a long HTTP search q in linear time', () => {
    const words = quickly('parseQuery', () => parseQuery('a'.repeat(200_000) + ' ' + 'from:'.repeat(20_000) + ' "' + 'x '.repeat(50_000)));
    assert.ok(words.keys.length > 0);
    quickly('parseQuery', () => parseQuery('-'.repeat(100_000) + ':'.repeat(100_000)));
  });

  it('splits filter text terms in linear time', () => {
    assert.deepEqual(textTerms('one "two  words" three'), ['one', 'two words', 'three']);
    quickly('textTerms', () => textTerms('"'.repeat(200_000) + ' '.repeat(200_000) + 'a'));
  });

  it('reads a hostile Date header in linear time', () => {
    assert.equal(sentDay('Mon, 1 Jan 2024 10:00:00 +0000'), Date.UTC(2024, 0, 1));
    quickly('sentDay', () => sentDay('1 ' + 'a'.repeat(200_000)));
    quickly('sentDay', () => sentDay('1 abc '.repeat(40_000)));
    quickly('sentDay', () => sentDay('1' + ' '.repeat(200_000)));
  });
});

describe('deeply nested HTML', () => {
  // 200,000 unclosed <div> (1 MB): html-to-text took about 20 s on it (superlinear in nesting), holding the
  // event loop while a delivered message was ingested
  const deep = '<div>'.repeat(200_000) + 'findme';

  it('measures nesting in one pass, not counting void and self-closing-by-parser elements', () => {
    assert.equal(htmlNestedDeeperThan('<html><body><div><p>a<p>b<br><img src=x></div></body></html>', 3), false);
    assert.equal(htmlNestedDeeperThan('<div><div><div><div>x</div></div></div></div>', 3), true);
    assert.equal(htmlNestedDeeperThan('<div></div>'.repeat(1000), 3), false);
    assert.equal(htmlNestedDeeperThan('<li>'.repeat(1000) + '<p>'.repeat(1000) + '<td>'.repeat(1000), 3), false);
    assert.equal(htmlNestedDeeperThan('<<<<' + '< div>'.repeat(10) + 'a < b', 3), false);
    assert.equal(quickly('htmlNestedDeeperThan', () => htmlNestedDeeperThan('<'.repeat(500_000), 256)), false);
    assert.equal(quickly('htmlNestedDeeperThan', () => htmlNestedDeeperThan(deep, 256)), true);
    assert.equal(stripTags('<p>Hello <b>world</b></p>'), ' Hello  world  ');
  });

  it('keeps the text of deep HTML in the search text without parsing it', async () => {
    const message = `From: a@example.com\r\nSubject: deep\r\nContent-Type: text/html\r\n\r\n${deep}\r\n`;
    const started = Date.now();
    const ingested = await ingestMessage(new TextEncoder().encode(message), new MemoryBlobs());
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000, `ingest took ${elapsed} ms`);
    assert.ok(ingested.searchText.includes('findme'));
    // ordinary HTML still goes through html-to-text
    const normal = await ingestMessage(new TextEncoder().encode('Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>world</b> &amp; more</p>\r\n'), new MemoryBlobs());
    assert.ok(normal.searchText.includes('Hello world & more'), normal.searchText);
  });

  it('shows deep HTML over HTTP as escaped text, promptly', () => {
    const clean = quickly('sanitizeMessageHtml', () => sanitizeMessageHtml(deep + '<script>x</script>', { allowRemote: false }), 3000);
    assert.ok(clean.html.includes('findme') && !clean.html.includes('<script'));
    assert.ok(quickly('htmlAsText', () => htmlAsText(deep), 3000).includes('findme'));
    assert.equal(htmlAsText('<p>Hello <b>world</b></p>').trim(), 'Hello world');
  });
});
