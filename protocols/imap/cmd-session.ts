/**
 * Commands about the session itself: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE
 * (RFC 2342), STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR (RFC 4959).
 */
import { Buffer } from 'node:buffer';
import { serverVersion } from '../net/version.ts';
import { astring } from './args.ts';
import { ANY, AUTHENTICATED, NOT_AUTHENTICATED, command } from './command.ts';
import type { CommandSpec } from './command.ts';
import { nstring } from './render.ts';
import { bad, no, ok } from './responses.ts';
import { ImapSyntaxError } from './types.ts';

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

function decodePlain(text: string): { username: string; password: string; authzid: string } {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new ImapSyntaxError('Invalid base64 in SASL response');
  const parts = Buffer.from(text, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1] || !parts[2]) throw new ImapSyntaxError('Invalid SASL PLAIN response');
  return { authzid: parts[0]!, username: parts[1], password: parts[2] };
}

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
    if (mechanism !== 'PLAIN') return no(`Unsupported authentication mechanism ${mechanism.slice(0, 20)}`, 'CANNOT');
    if (!session.plaintextAllowed) return no('Plaintext authentication is not allowed on an unencrypted connection', 'PRIVACYREQUIRED');
    let response = initial;
    if (response === null) {
      session.send('+ ');
      await session.flush();
      const line = await session.reader.readLine();
      if (line === null) return bad('SASL response too long');
      response = new TextDecoder().decode(line);
    }
    if (response === '*') return bad('Authentication cancelled');
    const { username, password, authzid } = decodePlain(response === '=' ? '' : response);
    if (authzid && authzid !== username) return no('Cannot act as another user', 'AUTHORIZATIONFAILED');
    return session.login(ctx, username, password, 'PLAIN');
  },
});

export const SESSION_COMMANDS: CommandSpec<unknown>[] = [capability, noop, check, logout, id, enable, namespace, starttls, login, authenticateCommand];
