/** plugins/submission.ts helpers: Bcc removal (folded lines, body untouched) and the relay's queue id. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { queueIdOf, withoutBcc } from '../plugins/submission.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('submission plugin helpers', () => {
  it('removes every Bcc field with its folded lines, only from the header', () => {
    const raw = 'From: a@x\r\nBCC: b@x,\r\n c@x\r\nTo: d@x\r\nbcc: e@x\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n';
    assert.equal(dec(withoutBcc(enc(raw))), 'From: a@x\r\nTo: d@x\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n');
    const plain = enc('From: a@x\nBcc-Like: no\n\nbody\n');
    assert.equal(withoutBcc(plain), plain, 'unchanged messages are the same bytes');
    assert.equal(dec(withoutBcc(enc('Bcc: only@x\n'))), '');
  });

  it('reads the queue id from the relay reply', () => {
    assert.equal(queueIdOf('250 2.0.0 Ok: queued as 4XyZ12'), '4XyZ12');
    assert.equal(queueIdOf('250 OK id=1abc'), null);
  });
});
