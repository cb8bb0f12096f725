/**
 * AUTHENTICATE LOGIN (the SASL LOGIN mechanism old clients use) and UNAUTHENTICATE (RFC 8437): transcripts over the
 * IMAP harness, then imapflow (loginMethod AUTH=LOGIN, and UNAUTHENTICATE followed by a second login on the same
 * connection is not something it does, so that part is a transcript) and Python's imaplib over a real socket.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { appendMessage, connect, imapTestAppPerSuite, login, message } from './helpers/imap-harness.ts';
import type { TestClient } from './helpers/imap-harness.ts';
import { imapListenerPerSuite } from './helpers/imap-listener.ts';
import { python } from './helpers/python.ts';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const USERNAME_CHALLENGE = `+ ${b64('Username:')}`;
const PASSWORD_CHALLENGE = `+ ${b64('Password:')}`;

/** Runs `AUTHENTICATE LOGIN`, answering the two challenges; returns the tagged line. */
async function authLogin(client: TestClient, user: string, pass: string): Promise<string> {
  const tag = client.nextTag();
  client.write(`${tag} AUTHENTICATE LOGIN\r\n`);
  assert.equal(await client.line(), USERNAME_CHALLENGE);
  client.write(`${b64(user)}\r\n`);
  assert.equal(await client.line(), PASSWORD_CHALLENGE);
  client.write(`${b64(pass)}\r\n`);
  return (await client.untilTagged(tag)).trim().split('\r\n').pop()!.slice(tag.length + 1);
}

describe('AUTHENTICATE LOGIN', () => {
  const t = imapTestAppPerSuite();

  it('is announced beside AUTH=PLAIN and logs in through two challenges', async () => {
    const { client, greeting } = await connect(t.app);
    assert.match(greeting, / AUTH=PLAIN AUTH=LOGIN /);
    assert.match(await authLogin(client, 'alice', 'secret'), /^OK \[CAPABILITY [^\]]*UNAUTHENTICATE[^\]]*\] alice authenticated$/);
    assert.equal(await client.status('SELECT INBOX').then((s) => s.slice(0, 2)), 'OK');
    const line = t.logs.find((entry) => entry.msg === 'login' && entry.method === 'AUTH=LOGIN');
    assert.ok(line, 'the login is logged with its method');
    client.end();
  });

  it('takes the user name as a SASL-IR initial response', async () => {
    const { client } = await connect(t.app);
    const tag = client.nextTag();
    client.write(`${tag} AUTHENTICATE LOGIN ${b64('alice')}\r\n`);
    assert.equal(await client.line(), PASSWORD_CHALLENGE);
    client.write(`${b64('secret')}\r\n`);
    assert.match(await client.untilTagged(tag), /OK \[CAPABILITY [^\]]+\] alice authenticated/);
    client.end();
  });

  it('refuses a wrong password like LOGIN does, and can be cancelled at either step', async () => {
    const { client } = await connect(t.app);
    assert.match(await authLogin(client, 'alice', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    let tag = client.nextTag();
    client.write(`${tag} AUTHENTICATE LOGIN\r\n`);
    assert.equal(await client.line(), USERNAME_CHALLENGE);
    client.write('*\r\n');
    assert.match(await client.untilTagged(tag), new RegExp(`${tag} BAD Authentication cancelled`));
    tag = client.nextTag();
    client.write(`${tag} AUTHENTICATE LOGIN ${b64('alice')}\r\n`);
    assert.equal(await client.line(), PASSWORD_CHALLENGE);
    client.write('*\r\n');
    assert.match(await client.untilTagged(tag), new RegExp(`${tag} BAD Authentication cancelled`));
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
    client.end();
  });

  it('answers BAD to a response that is not base64 and NO to an empty user name', async () => {
    const { client } = await connect(t.app);
    assert.equal(await client.status('AUTHENTICATE LOGIN not%base64'), 'BAD Invalid base64 in SASL response');
    const tag = client.nextTag();
    client.write(`${tag} AUTHENTICATE LOGIN =\r\n`);
    assert.equal(await client.line(), PASSWORD_CHALLENGE);
    client.write(`${b64('secret')}\r\n`);
    assert.match(await client.untilTagged(tag), new RegExp(`${tag} NO \\[AUTHENTICATIONFAILED\\]`));
    client.end();
  });

  it('is neither offered nor accepted without TLS from a remote address', async () => {
    const { client, greeting } = await connect(t.app, { isLoopback: false, remoteAddress: '192.0.2.1' });
    assert.ok(!greeting.includes('AUTH=LOGIN'));
    assert.match(await client.status(`AUTHENTICATE LOGIN ${b64('alice')}`), /^NO \[PRIVACYREQUIRED\]/);
    const secure = (await connect(t.app, { isLoopback: false, remoteAddress: '192.0.2.1', secure: true })).client;
    assert.match(await authLogin(secure, 'alice', 'secret'), /^OK /);
    client.end();
    secure.end();
  });
});

describe('AUTHENTICATE LOGIN and the failed-login limits', () => {
  const t = imapTestAppPerSuite({ auth: { failedLogins: { perUser: 2, delayMs: 0 } } });

  it('counts its failures with the other login commands', async () => {
    const { client } = await connect(t.app);
    assert.match(await authLogin(client, 'alice', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await client.status('LOGIN alice wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    // the limit is reached: even the right password is refused now, through either command
    assert.match(await authLogin(client, 'alice', 'secret'), /^NO /);
    assert.match(await client.status('LOGIN alice secret'), /^NO /);
    client.end();
  });
});

describe('UNAUTHENTICATE', () => {
  const t = imapTestAppPerSuite({ imap: { maxConnectionsPerUser: 1 } });

  it('is announced after login and refused before it', async () => {
    const { client, greeting } = await connect(t.app);
    assert.ok(!greeting.includes('UNAUTHENTICATE'));
    assert.equal(await client.status('UNAUTHENTICATE'), 'BAD Log in first');
    assert.equal(await client.status('LOGIN alice secret').then((s) => s.includes('UNAUTHENTICATE')), true);
    assert.equal(await client.status('UNAUTHENTICATE'), 'OK UNAUTHENTICATE completed');
    client.end();
  });

  it('goes back to not authenticated: mailbox closed without expunge, user slot and ENABLE state given back', async () => {
    const client = await login(t.app);
    await client.command('CREATE Work');
    await appendMessage(client, 'Work', message('keep me'), '\\Deleted');
    assert.deepEqual(await client.command('ENABLE CONDSTORE'), ['* ENABLED CONDSTORE', 'TAG OK ENABLE completed']);
    assert.match(await client.status('SELECT Work'), /^OK \[READ-WRITE\]/);
    assert.equal(await client.status('UNAUTHENTICATE'), 'OK UNAUTHENTICATE completed');
    // not authenticated: commands of the other states are refused, CAPABILITY is the pre-login list again
    assert.equal(await client.status('NOOP'), 'OK NOOP completed');
    const noops = t.logs.filter((entry) => entry.msg === 'command' && entry.command === 'NOOP');
    assert.equal(noops[noops.length - 1]!.user, undefined, 'log lines no longer name the user');
    assert.equal(await client.status('FETCH 1 FLAGS'), 'BAD Log in first');
    assert.equal(await client.status('LIST "" *'), 'BAD Log in first');
    const caps = (await client.command('CAPABILITY'))[0]!;
    assert.match(caps, / AUTH=PLAIN /);
    assert.ok(!caps.includes('UNAUTHENTICATE'));
    // the user's only connection slot was given back: another connection can log in while this one stays open
    const other = await login(t.app);
    assert.match(await other.status('EXAMINE Work'), /^OK/);
    assert.deepEqual((await other.command('FETCH 1 FLAGS')).slice(0, 1), ['* 1 FETCH (FLAGS (\\Deleted))'], 'no expunge on the way out');
    other.end();
    await other.done;
    // a second login on the same connection: CONDSTORE is off again (no MODSEQ in FETCH until enabled)
    assert.match(await client.status('LOGIN alice secret'), /^OK/);
    await client.command('SELECT Work');
    assert.deepEqual(await client.command('FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS (\\Deleted))', 'TAG OK FETCH completed']);
    // the slot is this connection's again: one more login is over the limit
    const third = await connect(t.app);
    assert.match(await third.client.status('LOGIN alice secret'), /^NO \[LIMIT\]/);
    third.client.end();
    client.end();
  });
});

const PYTHON_AUTH_LOGIN = `
import imaplib, json, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
out = {'caps': [c for c in m.capabilities if c.startswith('AUTH=')]}
asked = []
def answer(challenge):
    asked.append(challenge.decode())
    return b'alice' if challenge.startswith(b'User') else b'secret'
out['auth'] = m.authenticate('LOGIN', answer)[0]
out['asked'] = asked
out['select'] = m.select('INBOX')[0]
out['logout'] = m.logout()[0]
print(json.dumps(out))
`;

describe('AUTH=LOGIN with real clients', () => {
  const t = imapListenerPerSuite();

  it('imapflow logs in with loginMethod AUTH=LOGIN', async () => {
    const c = new ImapFlow({ host: '127.0.0.1', port: t.port, secure: false, auth: { user: 'alice', pass: 'secret', loginMethod: 'AUTH=LOGIN' }, logger: false });
    await c.connect();
    assert.ok(c.authenticated);
    assert.ok(c.capabilities.has('UNAUTHENTICATE'));
    const box = await c.mailboxOpen('INBOX');
    assert.equal(box.path, 'INBOX');
    await c.logout();
    assert.ok(t.logs.some((entry) => entry.msg === 'login' && entry.method === 'AUTH=LOGIN'));
  });

  it("Python's imaplib authenticates with the LOGIN mechanism", async () => {
    const result = await python(PYTHON_AUTH_LOGIN, [String(t.port)]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { caps: ['AUTH=PLAIN', 'AUTH=LOGIN'], auth: 'OK', asked: ['Username:', 'Password:'], select: 'OK', logout: 'BYE' });
  });
});
