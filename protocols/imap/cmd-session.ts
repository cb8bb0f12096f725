/**
 * Commands about the session itself: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE
 * (RFC 2342), STARTTLS, LOGIN, AUTHENTICATE PLAIN and LOGIN with SASL-IR (RFC 4959), UNAUTHENTICATE (RFC 8437).
 */
import { Buffer } from 'node:buffer';
import { serverVersion } from '../net/version.ts';
import { astring } from './args.ts';
import { ANY, AUTHENTICATED, NOT_AUTHENTICATED, command } from './command.ts';
import type { CommandSpec } from './command.ts';
import { nstring } from './render.ts';
import { bad, no, ok } from './responses.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapSession } from './session.ts';

const none = (args: { end(): void }) => args.end();

export const capability = command({
  name: 'CAPABILITY',
  states: ANY,
  parse: none,
  async run(session, _parsed, ctx) {
    session.send(`* CAPABILITY ${(await session.capabilities(ctx)).join(' ')}`);
    return ok('CAPABILITY completed');
  },
});

export const noop = command({
  name: 'NOOP',
  states: ANY,
  parse: none,
  async run(session) {
    if (session.selected) await session.notify(true, true);
    return ok('NOOP completed');
  },
});

export const check = command({
  name: 'CHECK',
  states: ['selected'],
  parse: none,
  async run(session) {
    await session.notify(true, true);
    return ok('CHECK completed');
  },
});

export const logout = command({
  name: 'LOGOUT',
  states: ANY,
  parse: none,
  async run(session) {
    session.send('* BYE Logging out');
    session.deselect();
    session.state = 'logout';
    return ok('LOGOUT completed');
  },
});

/** ID: the client's parameters are logged (bounded); the server answers its name and version. */
export const id = command({
  name: 'ID',
  states: ANY,
  parse(args) {
    const token = args.next('ID parameters');
    args.end();
    if (token.type === 'nil') return null;
    if (token.type !== 'list' || token.items.length % 2 !== 0 || token.items.length > 60) throw new ImapSyntaxError('Invalid ID parameters');
    const params: Record<string, string | null> = {};
    for (let i = 0; i < token.items.length; i += 2) {
      const key = token.items[i]!;
      const value = token.items[i + 1]!;
      if (key.type !== 'string') throw new ImapSyntaxError('Invalid ID field name');
      if (value.type !== 'string' && value.type !== 'nil') throw new ImapSyntaxError('Invalid ID field value');
      params[key.value.slice(0, 30).toLowerCase()] = value.type === 'nil' ? null : value.value.slice(0, 1024);
    }
    return params;
  },
  async run(session, params) {
    if (params) session.log.info('client id', { client: params });
    session.send(`* ID (${['name', 'WildDuck', 'version', serverVersion, 'vendor', 'WildDuck'].map((v) => nstring(v)).join(' ')})`);
    return ok('ID completed');
  },
});

/** What ENABLE turns on (upper case, as the session keeps it), with the name ENABLED reports. */
const ENABLEABLE = new Map([
  ['CONDSTORE', 'CONDSTORE'],
  ['QRESYNC', 'QRESYNC'],
  ['UTF8=ACCEPT', 'UTF8=ACCEPT'],
  ['IMAP4REV2', 'IMAP4rev2'], // RFC 9051 §6.3.1: the session answers as IMAP4rev2 from now on
]);

export const enable = command({
  name: 'ENABLE',
  states: AUTHENTICATED,
  parse(args) {
    const names = args.rest().map((token) => {
      if (token.type !== 'atom') throw new ImapSyntaxError('Invalid capability name');
      return token.value.toUpperCase();
    });
    if (names.length === 0) throw new ImapSyntaxError('Missing capability name');
    return names;
  },
  async run(session, names) {
    // IMAP4rev2 changes what a selected mailbox reports (\Recent): only before a mailbox is selected (RFC 5161 §3.1)
    const allowed = (name: string) => ENABLEABLE.has(name) && !(name === 'IMAP4REV2' && session.state === 'selected');
    const newly = [...new Set(names)].filter((name) => allowed(name) && !session.isEnabled(name));
    for (const name of newly) session.enable(name);
    if (newly.includes('QRESYNC')) session.enable('CONDSTORE'); // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
    session.send(`* ENABLED${newly.map((n) => ` ${ENABLEABLE.get(n)}`).join('')}`);
    return ok('ENABLE completed');
  },
});

export const namespace = command({
  name: 'NAMESPACE',
  states: AUTHENTICATED,
  parse: none,
  async run(session) {
    session.send('* NAMESPACE (("" "/")) NIL NIL');
    return ok('NAMESPACE completed');
  },
});

export const starttls = command({
  name: 'STARTTLS',
  states: NOT_AUTHENTICATED,
  parse: none,
  async run(session) {
    if (session.conn.secure) return bad('Connection is already secure');
    if (!session.conn.canStartTls) return no('STARTTLS is not available', 'UNAVAILABLE');
    return { ...ok('Begin TLS negotiation now'), after: () => session.startTls() };
  },
});

export const login = command({
  name: 'LOGIN',
  states: NOT_AUTHENTICATED,
  parse(args) {
    const username = args.astring('user name');
    const password = args.astring('password');
    args.end();
    return { username, password };
  },
  run: (session, { username, password }, ctx) => session.login(ctx, username, password, 'LOGIN'),
});

/** Strict base64 (what SASL responses are) → UTF-8 text. */
function base64Text(text: string): string {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new ImapSyntaxError('Invalid base64 in SASL response');
  return Buffer.from(text, 'base64').toString('utf8');
}

function decodePlain(text: string): { username: string; password: string; authzid: string } {
  const parts = base64Text(text).split('\0');
  if (parts.length !== 3 || !parts[1] || !parts[2]) throw new ImapSyntaxError('Invalid SASL PLAIN response');
  return { authzid: parts[0]!, username: parts[1], password: parts[2] };
}

/** A SASL exchange step: `+ challenge`, then the client's line; null when the line was too long or input ended. */
async function saslStep(session: ImapSession, challenge: string): Promise<string | null> {
  session.send(`+ ${challenge}`);
  await session.flush();
  const line = await session.reader.readLine();
  return line === null ? null : new TextDecoder().decode(line);
}

/** What a client answers to `+`: `*` cancels (RFC 3501 §6.2.2), `=` is an empty initial response (RFC 4959). */
const CANCELLED = Symbol('cancelled');

function response(text: string | null): string | null | typeof CANCELLED {
  if (text === '*') return CANCELLED;
  return text === '=' ? '' : text;
}

/** The SASL LOGIN challenges: "Username:" and "Password:" in base64. */
const LOGIN_USERNAME = Buffer.from('Username:').toString('base64');
const LOGIN_PASSWORD = Buffer.from('Password:').toString('base64');

/** Mechanisms AUTHENTICATE offers (announced as AUTH=... where plaintext passwords may be sent). */
const SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

export const authenticateCommand = command({
  name: 'AUTHENTICATE',
  states: NOT_AUTHENTICATED,
  parse(args) {
    const mechanism = args.atom('SASL mechanism').toUpperCase();
    const initial = args.remaining > 0 ? astring(args.next('initial response'), 'initial response') : null;
    args.end();
    return { mechanism, initial };
  },
  async run(session, { mechanism, initial }, ctx) {
    if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) return no(`Unsupported authentication mechanism ${mechanism.slice(0, 20)}`, 'CANNOT');
    // both mechanisms send the password as it is: the same rule as LOGIN (TLS, loopback or auth.allowPlaintext)
    if (!session.plaintextAllowed) return no('Plaintext authentication is not allowed on an unencrypted connection', 'PRIVACYREQUIRED');
    if (mechanism === 'PLAIN') {
      const answer = response(initial ?? (await saslStep(session, '')));
      if (answer === null) return bad('SASL response too long');
      if (answer === CANCELLED) return bad('Authentication cancelled');
      const { username, password, authzid } = decodePlain(answer);
      if (authzid && authzid !== username) return no('Cannot act as another user', 'AUTHORIZATIONFAILED');
      return session.login(ctx, username, password, 'PLAIN');
    }
    // LOGIN (draft-murchison-sasl-login): the user name (or SASL-IR's initial response), then the password
    const name = response(initial ?? (await saslStep(session, LOGIN_USERNAME)));
    if (name === null) return bad('SASL response too long');
    if (name === CANCELLED) return bad('Authentication cancelled');
    const username = base64Text(name);
    const secret = response(await saslStep(session, LOGIN_PASSWORD));
    if (secret === null) return bad('SASL response too long');
    if (secret === CANCELLED) return bad('Authentication cancelled');
    const password = base64Text(secret);
    if (!username || !password) return no('Invalid SASL LOGIN response', 'AUTHENTICATIONFAILED');
    return session.login(ctx, username, password, 'AUTH=LOGIN');
  },
});

/**
 * UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection (TLS stays). Everything the
 * session held for the user goes: the selected mailbox (closed without expunge), the place in the user's
 * connection count, ENABLEd extensions, plugins' per-session data and the user on the session and its log lines.
 */
export const unauthenticate = command({
  name: 'UNAUTHENTICATE',
  states: AUTHENTICATED,
  parse: none,
  async run(session) {
    await session.unauthenticate();
    return ok('UNAUTHENTICATE completed');
  },
});

export const SESSION_COMMANDS: CommandSpec<unknown>[] = [capability, noop, check, logout, id, enable, namespace, starttls, login, authenticateCommand, unauthenticate];
