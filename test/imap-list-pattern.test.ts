/**
 * LIST / LSUB pattern matching in linear time (issue 9, defect 1): the wildcard matcher against the regular
 * expressions it replaced, the 40-star LIST and the deep-mailbox LSUB that froze the server, and the
 * pattern length limit.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { patternMatcher } from '../protocols/imap/mailbox-tree.ts';
import { collapseWildcards, wildcardMatcher } from '../protocols/imap/wildcard.ts';
import { bootImapTestApp, connect, login } from './helpers/imap-harness.ts';
import type { ImapTestApp } from './helpers/imap-harness.ts';

/** The old matcher (a backtracking regular expression), kept as the reference for the semantics. */
function referenceMatcher(pattern: string): (path: string) => boolean {
  const escape = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const source = '^' + [...pattern].map((c) => (c === '*' ? '.*' : c === '%' ? '[^/]*' : escape(c))).join('') + '$';
  const exact = new RegExp(source, 's');
  const folded = new RegExp(source, 'is');
  return (path: string) => exact.test(path) || (path === 'INBOX' && folded.test(path));
}

/** A small deterministic generator (mulberry32), so a failure is reproducible from its seed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LIST pattern matcher', () => {
  it('collapses runs of wildcards', () => {
    assert.equal(collapseWildcards('a**b'), 'a*b');
    assert.equal(collapseWildcards('a%*%b'), 'a*b');
    assert.equal(collapseWildcards('%%%'), '%');
    assert.equal(collapseWildcards('*'.repeat(40) + 'Z'), '*Z');
    assert.equal(collapseWildcards('%a%%*b%'), '%a*b%');
    assert.equal(collapseWildcards('plain'), 'plain');
  });

  it('agrees with the old regular expressions on listed patterns', () => {
    const paths = ['INBOX', 'INBOX/Sub', 'Inbox', 'Work', 'Work/Projects', 'Work/Projects/2024', 'Sent Mail', 'a.b', 'a+b', 'a(b)', '', 'Ünïcode/ß', 'x\ny', '😀/x', 'a/b/c/d/e'];
    const patterns = ['*', '%', 'INBOX', 'inbox', 'in*', 'In%', 'iNbOx/*', 'Work/%', 'Work/*', '*/%', '%/%', '%/%/%', '*4', 'W*s', 'a.b', 'a?b', 'a+b', 'a(b)', '*%', '%*', '**', '', 'Ü*', '*ß', '😀%', '😀/*', 'x*y', '%\n%', 'a/%/c/*', '*/*/*/*/e', 'INBOX*', 'INBOX%', 'inbox/%', '[a]', '$', '^*'];
    for (const pattern of patterns) {
      const ours = patternMatcher(pattern);
      const theirs = referenceMatcher(pattern);
      for (const path of paths) assert.equal(ours(path), theirs(path), `pattern ${JSON.stringify(pattern)} path ${JSON.stringify(path)}`);
    }
  });

  it('agrees with the old regular expressions on random small patterns and paths', () => {
    const next = random(9);
    const alphabet = ['a', 'b', '/', 'I', 'n', 'N', 'B', 'o', 'X', 'x', 'i', '.'];
    const pick = (chars: string[], length: number) => Array.from({ length }, () => chars[Math.floor(next() * chars.length)]!).join('');
    for (let round = 0; round < 3000; round++) {
      const pattern = pick([...alphabet, '*', '%', '*', '%'], Math.floor(next() * 8));
      const ours = patternMatcher(pattern);
      const theirs = referenceMatcher(pattern);
      for (let k = 0; k < 8; k++) {
        const path = k === 0 ? 'INBOX' : pick(alphabet, Math.floor(next() * 9));
        assert.equal(ours(path), theirs(path), `round ${round}: pattern ${JSON.stringify(pattern)} path ${JSON.stringify(path)}`);
      }
    }
  });

  it('handles patterns longer than one 32-bit word of states', () => {
    const path = 'a/'.repeat(60) + 'end';
    assert.equal(wildcardMatcher('%/'.repeat(60) + 'end', '/')(path), true);
    assert.equal(wildcardMatcher('%/'.repeat(59) + 'end', '/')(path), false);
    assert.equal(wildcardMatcher('a*'.repeat(60) + 'end', '/')(path), true);
    assert.equal(wildcardMatcher('a*'.repeat(61) + 'end', '/')(path), false);
    assert.equal(wildcardMatcher('a/'.repeat(60) + 'end', '/')(path), true);
    assert.equal(wildcardMatcher('a/'.repeat(60) + 'en', '/')(path), false);
  });

  it('matches hostile patterns without backtracking', () => {
    // each of these took seconds (or never ended) as a regular expression; the bound is generous, it only
    // has to tell milliseconds from seconds on a loaded CI machine
    const deep = 'a/'.repeat(300) + 'b';
    const started = Date.now();
    assert.equal(patternMatcher('*'.repeat(40) + 'Z')('x'.repeat(1000)), false);
    assert.equal(patternMatcher('*'.repeat(30) + 'Z')(deep), false);
    assert.equal(patternMatcher('%*'.repeat(200) + 'Z')(deep), false);
    assert.equal(patternMatcher('%a'.repeat(200) + 'Z')('a'.repeat(1000)), false);
    assert.equal(patternMatcher('*a'.repeat(200) + 'Z')('a'.repeat(1000)), false);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });
});

describe('LIST / LSUB over IMAP with hostile patterns', () => {
  let t: ImapTestApp;
  before(async () => {
    t = await bootImapTestApp({ imap: { maxListPatternLength: 200 } });
  });
  after(async () => {
    await t.close();
  });

  /** Runs `command` on one session while a second client connects and sends NOOP; both must answer promptly. */
  async function whileAnotherClientWaits(command: string): Promise<string[]> {
    const client = await login(t.app);
    const other = await login(t.app);
    const started = Date.now();
    const pending = client.command(command, 15_000);
    const noop = await other.status('NOOP');
    const noopMs = Date.now() - started;
    const { greeting } = await connect(t.app);
    const lines = await pending;
    const elapsed = Date.now() - started;
    assert.match(noop, /^OK/);
    assert.match(greeting, /^\* OK/);
    // generous bounds: the regular expressions took 20 s or never ended; a linear match takes milliseconds,
    // and the bound only has to survive two test files sharing two cores under Node and Deno
    assert.ok(elapsed < 5000, `${command} took ${elapsed} ms`);
    assert.ok(noopMs < 5000, `NOOP waited ${noopMs} ms`);
    client.end();
    other.end();
    return lines;
  }

  it('answers LIST with 40 stars promptly and keeps serving other clients', async () => {
    const lines = await whileAnotherClientWaits(`LIST "" "${'*'.repeat(40)}Z"`);
    assert.deepEqual(lines, ['TAG OK LIST completed']);
  });

  it('answers LSUB with 30 stars on a deep mailbox promptly', async () => {
    const client = await login(t.app);
    const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    assert.match(await client.status(`CREATE "${deep}"`), /^OK/);
    assert.match(await client.status(`SUBSCRIBE "${deep}"`), /^OK/);
    client.end();
    assert.deepEqual(await whileAnotherClientWaits(`LSUB "" "${'*'.repeat(30)}Z"`), ['TAG OK LSUB completed']);
    // and the matcher still finds it
    const lines = await whileAnotherClientWaits(`LSUB "" "${'*'.repeat(30)}d39"`);
    assert.deepEqual(lines, [`* LSUB (\\HasNoChildren) "/" "${deep}"`, 'TAG OK LSUB completed']);
  });

  it('refuses patterns over imap.maxListPatternLength with NO [LIMIT]', async () => {
    const client = await login(t.app);
    assert.equal(await client.status(`LIST "" "${'%'.repeat(201)}"`), 'NO [LIMIT] Mailbox pattern too long (at most 200 characters)');
    assert.equal(await client.status(`LIST "${'a'.repeat(150)}" "${'%'.repeat(51)}"`), 'NO [LIMIT] Mailbox pattern too long (at most 200 characters)');
    assert.equal(await client.status(`LIST "" ("${'%'.repeat(100)}" "${'*'.repeat(101)}")`), 'NO [LIMIT] Mailbox pattern too long (at most 200 characters)');
    assert.equal(await client.status(`LSUB "" "${'*'.repeat(201)}"`), 'NO [LIMIT] Mailbox pattern too long (at most 200 characters)');
    assert.equal(await client.status(`LIST "" "${'%'.repeat(200)}"`), 'OK LIST completed');
    // the session goes on
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
    client.end();
  });
});
