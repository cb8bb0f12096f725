/**
 * The RFC 5322 address-list parser behind ENVELOPE and address search (storage/mime/address-list.ts): routes,
 * groups, comments, quoted strings, and the lenient readings of broken headers that mail clients produce.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAddresses } from '../storage/mime/address-list.ts';
import type { EnvelopeAddress } from '../storage/ports.ts';

const box = (name: string | null, mailbox: string, host: string, adl: string | null = null): EnvelopeAddress => ({ name, adl, mailbox, host });
const start = (name: string): EnvelopeAddress => ({ name: null, adl: null, mailbox: name, host: null });
const end: EnvelopeAddress = { name: null, adl: null, mailbox: null, host: null };

describe('address lists', () => {
  it('reads names, quoted names, addr-specs and angle addresses', () => {
    assert.deepEqual(parseAddresses('Real Name <user@example.org>, plain@example.org'), [box('Real Name', 'user', 'example.org'), box(null, 'plain', 'example.org')]);
    assert.deepEqual(parseAddresses('"Doe, John" <j@x.org>'), [box('Doe, John', 'j', 'x.org')]);
    assert.deepEqual(parseAddresses('"say \\"hi\\"" <h@x.org>'), [box('say "hi"', 'h', 'x.org')]);
    assert.deepEqual(parseAddresses('=?utf-8?q?J=C3=BCrgen?= <j@x>'), [box('=?utf-8?q?J=C3=BCrgen?=', 'j', 'x')]);
    assert.deepEqual(parseAddresses('"john doe"@x.org'), [box(null, '"john doe"', 'x.org')]);
    assert.deepEqual(parseAddresses('first . last @ sub . example . org'), [box(null, 'first.last', 'sub.example.org')]);
    assert.deepEqual(parseAddresses('user@[192.0.2.1]'), [box(null, 'user', '[192.0.2.1]')]);
  });

  it('keeps source routes', () => {
    assert.deepEqual(parseAddresses('<@route:user@domain>'), [box(null, 'user', 'domain', '@route')]);
    assert.deepEqual(parseAddresses('Name <@a.org,@b.org:user@domain>'), [box('Name', 'user', 'domain', '@a.org,@b.org')]);
  });

  it('treats comments as Dovecot does: never an address, a name only after an address that has none', () => {
    assert.deepEqual(parseAddresses('user@domain (Real Name)'), [box('Real Name', 'user', 'domain')]);
    assert.deepEqual(parseAddresses('<user (c1)@ (c2) domain.org>'), [box(null, 'user', 'domain.org')]);
    assert.deepEqual(parseAddresses('Name (note) <a@b>'), [box('Name', 'a', 'b')]);
    assert.deepEqual(parseAddresses('<a@b> (after)'), [box('after', 'a', 'b')]);
    assert.deepEqual(parseAddresses('(only a comment)'), null);
    assert.deepEqual(parseAddresses('"quoted (x)" <a@b>'), [box('quoted (x)', 'a', 'b')]);
  });

  it('reads groups, empty ones and ones holding only comments', () => {
    assert.deepEqual(parseAddresses('group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;'), [
      start('group'),
      box(null, 'g1', 'd1.org'),
      box(null, 'g2', 'd2.org'),
      end,
      start('group2'),
      box(null, 'g3', 'd3.org'),
      end,
    ]);
    assert.deepEqual(parseAddresses('group:;, group2: (foo) ;'), [start('group'), end, start('group2'), end]);
    assert.deepEqual(parseAddresses('undisclosed-recipients:;'), [start('undisclosed-recipients'), end]);
    assert.deepEqual(parseAddresses('team: Ann <ann@x.org>, bob@x.org'), [start('team'), box('Ann', 'ann', 'x.org'), box(null, 'bob', 'x.org'), end]);
  });

  it('reads broken headers leniently', () => {
    assert.deepEqual(parseAddresses('Name <a@b'), [box('Name', 'a', 'b')]);
    assert.deepEqual(parseAddresses('a@b, , c@d;'), [box(null, 'a', 'b'), box(null, 'c', 'd')]);
    assert.deepEqual(parseAddresses('John Doe john@example.com'), [box('John Doe', 'john', 'example.com')]);
    assert.deepEqual(parseAddresses('undisclosed'), [box(null, 'undisclosed', '')]);
    assert.deepEqual(parseAddresses('Undisclosed recipients'), [box('Undisclosed recipients', '', '')]);
    assert.deepEqual(parseAddresses('<>'), [box(null, '', '')]);
    assert.deepEqual(parseAddresses('"unterminated <a@b>'), [box('unterminated <a@b>', '', '')]);
    assert.deepEqual(parseAddresses('(unterminated a@b'), null);
    assert.deepEqual(parseAddresses(''), null);
  });

  it('never throws and gives well-formed addresses for any mix of the grammar\'s characters', () => {
    const alphabet = ['a', 'b', '@', '.', ',', ';', ':', '<', '>', '(', ')', '"', '\\', '[', ']', ' ', 'x y'];
    let seed = 12345;
    const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let round = 0; round < 3000; round++) {
      let value = '';
      for (let i = random(24); i > 0; i--) value += alphabet[random(alphabet.length)];
      const parsed = parseAddresses(value);
      if (parsed === null) continue;
      let depth = 0;
      for (const item of parsed) {
        if (item.host !== null) assert.equal(typeof item.mailbox, 'string', value);
        else if (item.mailbox !== null) depth++;
        else depth--;
        assert.ok(depth === 0 || depth === 1, value);
      }
      assert.equal(depth, 0, `groups are closed: ${value}`);
    }
  });
});
