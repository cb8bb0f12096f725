import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeAddress, lookupKeys, normalizeUsername, AddressError } from '../storage/addresses.ts';
import { hashPassword, verifyPassword, needsRehash } from '../storage/passwords.ts';

describe('address normalization', () => {
  it('lowercases and NFC-normalizes, IDN domains in Unicode whatever form they arrive in', () => {
    assert.equal(normalizeAddress('Andris@Example.COM').address, 'andris@example.com');
    assert.equal(normalizeAddress('user@xn--bcher-kva.de').address, 'user@bücher.de');
    assert.equal(normalizeAddress('user@BÜCHER.de').address, 'user@bücher.de');
    assert.equal(normalizeAddress('user@bücher.de').asciiDomain, 'xn--bcher-kva.de');
    // internationalized local part; decomposed ü (u + U+0308) equals composed ü
    assert.equal(normalizeAddress('Jürgen@example.com').address, normalizeAddress('ju\u0308rgen@EXAMPLE.com').address);
    assert.equal(normalizeAddress('用户@例子.广告').address, '用户@例子.广告');
    assert.equal(normalizeAddress('<Someone@Example.com>').address, 'someone@example.com');
  });

  it('resolves user+tag@ to user@ as a second lookup key', () => {
    assert.deepEqual(lookupKeys('User+Lists@Example.com'), ['user+lists@example.com', 'user@example.com']);
    assert.deepEqual(lookupKeys('user@example.com'), ['user@example.com']);
    assert.deepEqual(lookupKeys('+only@example.com'), ['+only@example.com']);
  });

  it('rejects what is not an address', () => {
    for (const bad of ['', 'plain', '@example.com', 'user@', 'us er@example.com', 'a\u0000b@example.com', `${'x'.repeat(65)}@example.com`]) {
      assert.throws(() => normalizeAddress(bad), AddressError, bad);
    }
  });

  it('validates usernames', () => {
    assert.equal(normalizeUsername(' Alice '), 'alice');
    assert.equal(normalizeUsername('jürgen.müller'), 'jürgen.müller');
    assert.throws(() => normalizeUsername('bad name'), AddressError);
    assert.throws(() => normalizeUsername(''), AddressError);
    assert.throws(() => normalizeUsername('x'.repeat(129)), AddressError);
  });
});

describe('password hashing', () => {
  it('verifies the right password only, with a salted scrypt encoding', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    assert.match(a, /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.notEqual(a, b, 'salted');
    assert.ok(!a.includes('correct horse'));
    assert.equal(await verifyPassword(a, 'correct horse'), true);
    assert.equal(await verifyPassword(a, 'correct horsE'), false);
    assert.equal(await verifyPassword(null, 'x'), false);
    assert.equal(await verifyPassword('$2b$10$notscrypt', 'x'), false);
  });

  it('flags weaker parameters for rehash', async () => {
    const weak = await hashPassword('pw', { ln: 12, r: 8, p: 1 });
    assert.equal(await verifyPassword(weak, 'pw'), true);
    assert.equal(needsRehash(weak), true);
    assert.equal(needsRehash(await hashPassword('pw')), false);
  });
});
