import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parseSearch } from '../protocols/imap/search.ts';
import { search, sentDay } from '../storage/search/evaluate.ts';
import type { SearchContext } from '../storage/search/evaluate.ts';
import { ImapSyntaxError } from '../protocols/imap/types.ts';
import type { ImapToken } from '../protocols/imap/types.ts';
import { ingestMessage } from '../storage/mime/index.ts';
import type { MessageIndexEntry } from '../storage/ports.ts';
import { atom, atoms, list, str } from './helpers/imap-tokens.ts';
import { MemoryBlobs } from './helpers/memory-blobs.ts';
import { fixture } from './helpers/mime-fixtures.ts';

interface Stored {
  entry: MessageIndexEntry;
  headers: string;
  searchText: string;
}

/** A small mailbox: UID → fixture, flags, internal date, modseq. */
const MAILBOX: Array<[number, string, string[], string, number]> = [
  [1, 'simple.eml', ['\\Seen'], '2024-01-01T10:00:00Z', 3],
  [2, 'nested-multipart.eml', ['\\Flagged', '$Work'], '2024-01-02T10:00:00Z', 10],
  [5, 'rfc822-attachment.eml', ['\\Seen', '\\Answered'], '2024-01-03T08:00:00Z', 4],
  [9, 'windows-1251.eml', ['\\Deleted', '\\Draft'], '2024-01-05T00:00:00Z', 7],
  [10, '8bit-no-charset-latin1.eml', [], '2024-01-05T23:30:00Z', 12],
];

const NOW = Date.parse('2024-01-06T00:00:00Z');
const messages = new Map<number, Stored>();
const entries: MessageIndexEntry[] = [];

before(async () => {
  for (const [uid, name, flags, date, modseq] of MAILBOX) {
    const bytes = fixture(name);
    const ingested = await ingestMessage(bytes, new MemoryBlobs());
    const entry = { uid, modseq, flags, size: ingested.size, internalDate: Date.parse(date) };
    entries.push(entry);
    messages.set(uid, {
      entry,
      headers: new TextDecoder().decode(bytes.subarray(0, ingested.mime.bodyStart)),
      searchText: ingested.searchText,
    });
  }
});

function context(recent: number[] = []) {
  const loads = { headers: [] as number[], text: [] as number[] };
  const ctx: SearchContext = {
    entries,
    recent: new Set(recent),
    now: NOW,
    loadHeaders: async (uid) => {
      loads.headers.push(uid);
      return messages.get(uid)!.headers;
    },
    loadSearchText: async (uid) => {
      loads.text.push(uid);
      return messages.get(uid)!.searchText;
    },
  };
  return { ctx, loads };
}

/** The matching UIDs of a parsed query (the evaluator answers more: highestModseq). */
async function runSearch(query: Parameters<typeof search>[0], ctx: SearchContext): Promise<number[]> {
  return (await search(query, ctx)).uids;
}

async function find(args: ImapToken[], recent: number[] = []): Promise<number[]> {
  return runSearch(parseSearch(args, { utf8: false }), context(recent).ctx);
}

describe('SEARCH: index keys', () => {
  it('flags', async () => {
    assert.deepEqual(await find(atoms('ALL')), [1, 2, 5, 9, 10]);
    assert.deepEqual(await find(atoms('SEEN')), [1, 5]);
    assert.deepEqual(await find(atoms('UNSEEN')), [2, 9, 10]);
    assert.deepEqual(await find(atoms('ANSWERED')), [5]);
    assert.deepEqual(await find(atoms('UNANSWERED')), [1, 2, 9, 10]);
    assert.deepEqual(await find(atoms('DELETED')), [9]);
    assert.deepEqual(await find(atoms('UNDELETED')), [1, 2, 5, 10]);
    assert.deepEqual(await find(atoms('DRAFT')), [9]);
    assert.deepEqual(await find(atoms('UNDRAFT')), [1, 2, 5, 10]);
    assert.deepEqual(await find(atoms('FLAGGED')), [2]);
    assert.deepEqual(await find(atoms('UNFLAGGED')), [1, 5, 9, 10]);
    assert.deepEqual(await find(atoms('KEYWORD $work')), [2]);
    assert.deepEqual(await find(atoms('UNKEYWORD $Work')), [1, 5, 9, 10]);
  });

  it('RECENT, NEW, OLD', async () => {
    assert.deepEqual(await find(atoms('RECENT'), [5, 10]), [5, 10]);
    assert.deepEqual(await find(atoms('NEW'), [5, 10]), [10]);
    assert.deepEqual(await find(atoms('OLD'), [5, 10]), [1, 2, 9]);
  });

  it('sizes', async () => {
    const sizes = entries.map((entry) => entry.size);
    const middle = [...sizes].sort((a, b) => a - b)[2]!;
    const larger = entries.filter((entry) => entry.size > middle).map((entry) => entry.uid);
    const smaller = entries.filter((entry) => entry.size < middle).map((entry) => entry.uid);
    assert.deepEqual(await find(atoms(`LARGER ${middle}`)), larger);
    assert.deepEqual(await find(atoms(`SMALLER ${middle}`)), smaller);
    assert.equal(larger.length + smaller.length, 4);
  });

  it('internal date by UTC calendar day', async () => {
    assert.deepEqual(await find(atoms('ON 5-Jan-2024')), [9, 10]);
    assert.deepEqual(await find(atoms('SINCE 3-Jan-2024')), [5, 9, 10]);
    assert.deepEqual(await find(atoms('BEFORE 3-Jan-2024')), [1, 2]);
    assert.deepEqual(await find([atom('SINCE'), str('02-jan-2024'), atom('BEFORE'), str('4-Jan-2024')]), [2, 5]);
  });

  it('OLDER / YOUNGER (WITHIN) against now', async () => {
    assert.deepEqual(await find(atoms('YOUNGER 3600')), [10]);
    assert.deepEqual(await find(atoms('OLDER 3600')), [1, 2, 5, 9]);
    assert.deepEqual(await find(atoms('YOUNGER 86400')), [9, 10], 'the boundary is within');
    assert.deepEqual(await find(atoms('OLDER 86400')), [1, 2, 5]);
  });

  it('UID and sequence sets', async () => {
    assert.deepEqual(await find(atoms('UID 3:*')), [5, 9, 10]);
    assert.deepEqual(await find(atoms('UID 100:*')), [10]);
    assert.deepEqual(await find(atoms('UID 1:4294967295')), [1, 2, 5, 9, 10]);
    assert.deepEqual(await find(atoms('UID 3,4')), []);
    assert.deepEqual(await find(atoms('2:3')), [2, 5]);
    assert.deepEqual(await find(atoms('*')), [10]);
    assert.deepEqual(await find(atoms('1,4:* UNSEEN')), [9, 10]);
  });

  it('MODSEQ reports the highest modseq of the matches', async () => {
    const query = parseSearch(atoms('MODSEQ 7'), { utf8: false });
    assert.equal(query.usesModseq, true);
    assert.deepEqual(await search(query, context().ctx), { uids: [2, 9, 10], highestModseq: 12 });
    const withEntry = parseSearch([atom('MODSEQ'), str('/flags/\\draft'), atom('all'), atom('4'), atom('SEEN')], { utf8: false });
    assert.deepEqual(await search(withEntry, context().ctx), { uids: [5], highestModseq: 4 });
    assert.deepEqual(await search(parseSearch(atoms('MODSEQ 100'), { utf8: false }), context().ctx), { uids: [], highestModseq: null });
    assert.equal((await search(parseSearch(atoms('SEEN'), { utf8: false }), context().ctx)).highestModseq, null);
  });

  it('NOT, OR and parenthesized groups', async () => {
    assert.deepEqual(await find(atoms('NOT SEEN')), [2, 9, 10]);
    assert.deepEqual(await find(atoms('OR ANSWERED FLAGGED')), [2, 5]);
    assert.deepEqual(await find(atoms('NOT OR ANSWERED FLAGGED')), [1, 9, 10]);
    assert.deepEqual(await find([atom('OR'), list(...atoms('SEEN UNANSWERED')), atom('DELETED')]), [1, 9]);
    assert.deepEqual(await find([list(list(atom('ALL')))]), [1, 2, 5, 9, 10]);
    assert.deepEqual(await find(atoms('OR OR SEEN DRAFT FLAGGED')), [1, 2, 5, 9]);
  });
});

describe('SEARCH: headers and text', () => {
  it('address and subject keys match decoded header values, case-insensitively', async () => {
    assert.deepEqual(await find([atom('FROM'), str('müller')]), [2]);
    assert.deepEqual(await find([atom('FROM'), str('ALICE@EXAMPLE')]), [2]);
    assert.deepEqual(await find([atom('TO'), str('carol')]), [2]);
    assert.deepEqual(await find([atom('CC'), str('eve@')]), [2]);
    assert.deepEqual(await find([atom('BCC'), str('eve')]), []);
    assert.deepEqual(await find([atom('SUBJECT'), str('réunion')]), [5]);
    assert.deepEqual(await find([atom('SUBJECT'), str('ПРИВЕТ')]), [9]);
    assert.deepEqual(await find([atom('FROM'), str('Иван')]), [9]);
    assert.deepEqual(await find([atom('SUBJECT'), str('unicode friendly ✔')]), [1]);
    assert.deepEqual(await find([atom('SUBJECT'), str('report with a folded')]), [2]);
  });

  it('HEADER: field name case-insensitive, empty string means the field exists', async () => {
    assert.deepEqual(await find([atom('HEADER'), str('message-id'), str('report-2024')]), [2]);
    assert.deepEqual(await find([atom('HEADER'), str('Received'), str('')]), [2]);
    assert.deepEqual(await find([atom('HEADER'), str('X-Nope'), str('')]), []);
    assert.deepEqual(await find([atom('HEADER'), str('Content-Transfer-Encoding'), str('8BIT')]), [10]);
  });

  it('BODY and TEXT', async () => {
    assert.deepEqual(await find([atom('BODY'), str('straße')]), [2]);
    assert.deepEqual(await find([atom('BODY'), str('demain à 10h')]), [5]);
    assert.deepEqual(await find([atom('BODY'), str('café crème')]), [10]);
    assert.deepEqual(await find([atom('TEXT'), str('hello')]), [1, 2]);
    assert.deepEqual(await find([atom('TEXT'), str('mx.example.com')]), [2], 'TEXT sees header fields');
    assert.deepEqual(await find([atom('TEXT'), str('message-id: <report')]), [2]);
    assert.deepEqual(await find([atom('BODY'), str('no such words anywhere')]), []);
  });

  it('SENT* compare the Date header calendar date, ignoring time and zone', async () => {
    assert.deepEqual(await find(atoms('SENTON 2-Jan-2024')), [2]);
    assert.deepEqual(await find(atoms('SENTBEFORE 1-Jan-2016')), [1]);
    // windows-1251.eml: Fri, 05 Jan 2024 15:00:00 +0300; the latin1 fixture has no Date, so its internal date counts
    assert.deepEqual(await find(atoms('SENTSINCE 4-Jan-2024')), [9, 10]);
    assert.deepEqual(await find(atoms('SENTON 3-Jan-2024')), [5]);
    assert.equal(sentDay('Wed, 03 Jan 2024 23:30:00 -0800'), Date.UTC(2024, 0, 3));
    assert.equal(sentDay('3 Jan 99 10:00 GMT'), Date.UTC(1999, 0, 3));
    assert.equal(sentDay('garbage'), null);
  });
});

describe('SEARCH: CHARSET', () => {
  it('decodes ISO-8859-1 string arguments', async () => {
    const bytes = new Uint8Array([0x52, 0xe9, 0x75, 0x6e, 0x69, 0x6f, 0x6e]); // "Réunion" in Latin-1
    const query = parseSearch([atom('CHARSET'), atom('ISO-8859-1'), atom('BODY'), str(bytes, true)], { utf8: false });
    assert.equal(query.charset, 'ISO-8859-1');
    assert.deepEqual(query.key, { type: 'body', value: 'Réunion' });
    assert.deepEqual(await runSearch(query, context().ctx), [5]);
  });

  it('decodes UTF-8 and windows-1251 string arguments', async () => {
    const utf8 = parseSearch([atom('CHARSET'), str('UTF-8'), atom('SUBJECT'), str('привет')], { utf8: false });
    assert.deepEqual(await runSearch(utf8, context().ctx), [9]);
    const cp1251 = new Uint8Array([0xec, 0xe8, 0xf0]); // "мир"
    const query = parseSearch([atom('CHARSET'), atom('windows-1251'), atom('TEXT'), str(cp1251, true)], { utf8: false });
    assert.deepEqual(await runSearch(query, context().ctx), [9]);
  });

  it('without CHARSET strings are UTF-8 (UTF8=ACCEPT or not)', async () => {
    assert.deepEqual(await runSearch(parseSearch([atom('BODY'), str('Straße')], { utf8: true }), context().ctx), [2]);
  });

  it('unknown charset is BADCHARSET', () => {
    assert.throws(
      () => parseSearch([atom('CHARSET'), atom('X-KLINGON'), atom('ALL')], { utf8: false }),
      (error: unknown) => error instanceof ImapSyntaxError && error.code === 'BADCHARSET',
    );
  });
});

describe('SEARCH: loading only what is needed', () => {
  it('index-only keys load nothing', async () => {
    const { ctx, loads } = context([10]);
    await runSearch(parseSearch(atoms('UNSEEN NOT DELETED OR RECENT LARGER 100 UID 1:*'), { utf8: false }), ctx);
    assert.deepEqual(loads, { headers: [], text: [] });
  });

  it('text keys load only messages the cheap keys leave open, headers before text', async () => {
    const { ctx, loads } = context();
    const result = await runSearch(parseSearch([atom('UNSEEN'), atom('FROM'), str('alice')], { utf8: false }), ctx);
    assert.deepEqual(result, [2]);
    assert.deepEqual(loads.headers.sort((a, b) => a - b), [2, 9, 10]);
    assert.deepEqual(loads.text, []);

    const second = context();
    await runSearch(parseSearch([atom('OR'), atom('SEEN'), atom('BODY'), str('x'), atom('DELETED')], { utf8: false }), second.ctx);
    assert.deepEqual(second.loads.text, [9], 'only the unseen deleted message needs its text');
    const third = context();
    await runSearch(parseSearch([atom('OR'), atom('SEEN'), atom('BODY'), str('x')], { utf8: false }), third.ctx);
    assert.deepEqual(third.loads.text.sort((a, b) => a - b), [2, 9, 10]);
  });

  it('AND evaluates the cheaper key first', async () => {
    const { ctx, loads } = context();
    const result = await runSearch(parseSearch([atom('BODY'), str('hello'), atom('FROM'), str('nobody-matches')], { utf8: false }), ctx);
    assert.deepEqual(result, []);
    assert.equal(loads.headers.length, 5);
    assert.deepEqual(loads.text, []);
  });
});

describe('SEARCH: syntax errors', () => {
  const invalid: Array<[string, ImapToken[]]> = [
    ['no criteria', []],
    ['only a charset', [atom('CHARSET'), atom('UTF-8')]],
    ['unknown key', atoms('FOO')],
    ['missing argument', atoms('FROM')],
    ['bad date', atoms('SINCE 2024-01-01')],
    ['bad number', atoms('LARGER x')],
    ['negative', atoms('LARGER -1')],
    ['NOT without key', atoms('NOT')],
    ['OR with one key', atoms('OR SEEN')],
    ['empty group', [list()]],
    ['HEADER without value', [atom('HEADER'), str('Subject')]],
    ['HEADER with empty field name', [atom('HEADER'), str(''), str('x')]],
    ['KEYWORD with a system flag', [atom('KEYWORD'), atom('\\Seen')]],
    ['UID without set', atoms('UID')],
    ['UID with a bad set', atoms('UID 0:5')],
    ['sequence set with 0', atoms('0')],
    ['OLDER 0', atoms('OLDER 0')],
    ['MODSEQ with a bad entry type', [atom('MODSEQ'), str('/flags/\\seen'), atom('foo'), atom('1')]],
    ['RETURN (ESEARCH)', [atom('RETURN'), list(atom('MIN')), atom('ALL')]],
    ['a string as key', [str('ALL')]],
  ];
  for (const [name, args] of invalid) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => parseSearch(args, { utf8: false }),
        (error: unknown) => error instanceof ImapSyntaxError && error.code === null,
      );
    });
  }

  it('refuses deep nesting instead of overflowing the stack', () => {
    let token: ImapToken = atom('ALL');
    for (let depth = 0; depth < 10000; depth++) token = list(token);
    assert.throws(() => parseSearch([token], { utf8: false }), ImapSyntaxError);
    const nots = Array.from({ length: 10000 }, () => atom('NOT'));
    assert.throws(() => parseSearch([...nots, atom('ALL')], { utf8: false }), ImapSyntaxError);
  });

  it('accepts lowercase keys and a quoted charset', () => {
    assert.deepEqual(parseSearch([atom('charset'), str('us-ascii'), atom('seen')], { utf8: false }).key, { type: 'flag', flag: '\\Seen', present: true });
  });
});
