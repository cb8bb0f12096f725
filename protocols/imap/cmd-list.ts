/**
 * LIST (RFC 3501 §6.3.8 with RFC 5258 LIST-EXTENDED: selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH,
 * SPECIAL-USE; return options SUBSCRIBED, CHILDREN, SPECIAL-USE; several patterns) and LSUB (§6.3.9).
 * Reads storage directly (`mailboxes.list`); nothing here writes.
 */
import { list } from './args.ts';
import type { Args } from './args.ts';
import { AUTHENTICATED, command } from './command.ts';
import { DELIMITER, baseAttributes, buildTree, patternMatcher } from './mailbox-tree.ts';
import type { TreeNode } from './mailbox-tree.ts';
import { decodeModifiedUtf7, encodeMailboxName, literalOrQuoted, normalizeMailboxPath } from './render.ts';
import { bad, no, ok } from './responses.ts';
import type { Outcome } from './responses.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';
import type { ImapSession } from './session.ts';
import { keptSubscriptions } from '../../storage/subscriptions.ts';
import { statusItems, statusValues } from './status-items.ts';

interface ListRequest {
  /** Null when the reference is not valid modified UTF-7 (nothing matches). */
  reference: string | null;
  /** The patterns that are valid modified UTF-7 (the others match nothing). */
  patterns: string[];
  /** Some pattern was not valid modified UTF-7. */
  unmatchable: boolean;
  subscribedOnly: boolean;
  recursiveMatch: boolean;
  specialUseOnly: boolean;
  returnSubscribed: boolean;
  /** LIST "" "": the hierarchy delimiter query. */
  extended: boolean;
  /**
   * Return options the built-in LIST does not know (`STATUS (MESSAGES UNSEEN)` → `{ name: 'STATUS', params }`),
   * left for plugins (the LIST command hook): a plugin that handles one removes it and runs the built-in LIST
   * through `next()`. Any left when the built-in handler runs make the command BAD.
   */
  returnExtensions: Array<{ name: string; params: ImapToken | null }>;
  /**
   * `RETURN (STATUS (...))` in an IMAP4rev2 session, where LIST-STATUS (RFC 5819) is part of the protocol (RFC 9051
   * §6.3.9.6): answered by the built-in LIST with the STATUS command's values (status-items.ts), so it does not depend
   * on the `list-status` plugin. Not in `returnExtensions` then: the plugin, when loaded, leaves such a LIST alone.
   */
  statusItems: string[] | null;
}

export type { ListRequest };

/**
 * A reference or pattern as Unicode. Null for legal syntax that is not valid modified UTF-7: no mailbox name can
 * match it, so LIST answers an empty OK (as Dovecot does), where a name argument would get NO.
 */
function patternText(token: ImapToken, utf8: boolean): string | null {
  let text: string;
  if (token.type === 'string') text = token.value;
  else if (token.type === 'atom' && !token.section) text = token.value;
  else if (token.type === 'nil') text = 'NIL';
  else throw new ImapSyntaxError('Invalid mailbox pattern');
  if (utf8) return text;
  try {
    return decodeModifiedUtf7(text);
  } catch (err) {
    if (err instanceof ImapSyntaxError && err.status === 'NO') return null;
    throw err;
  }
}

function words(tokens: ImapToken[], what: string): string[] {
  return tokens.map((token) => {
    if (token.type !== 'atom') throw new ImapSyntaxError(`Invalid ${what}`);
    return token.value.toUpperCase();
  });
}

function parseList(args: Args, session: ImapSession): ListRequest {
  const request: ListRequest = {
    reference: '',
    patterns: [],
    unmatchable: false,
    subscribedOnly: false,
    recursiveMatch: false,
    specialUseOnly: false,
    returnSubscribed: false,
    extended: false,
    returnExtensions: [],
    statusItems: null,
  };
  let first = args.next('reference');
  if (first.type === 'list') {
    request.extended = true;
    for (const option of words(first.items, 'selection option')) {
      if (option === 'SUBSCRIBED') request.subscribedOnly = true;
      else if (option === 'RECURSIVEMATCH') request.recursiveMatch = true;
      else if (option === 'SPECIAL-USE') request.specialUseOnly = true;
      else if (option !== 'REMOTE') throw new ImapSyntaxError(`Unsupported selection option ${option.slice(0, 30)}`);
    }
    if (request.recursiveMatch && !request.subscribedOnly) throw new ImapSyntaxError('RECURSIVEMATCH needs another selection option');
    first = args.next('reference');
  }
  request.reference = patternText(first, session.utf8);
  const patterns = args.next('mailbox pattern');
  if (patterns.type === 'list') {
    request.extended = true;
    if (patterns.items.length === 0) throw new ImapSyntaxError('Empty pattern list');
  }
  for (const token of patterns.type === 'list' ? patterns.items : [patterns]) {
    const pattern = patternText(token, session.utf8);
    if (pattern === null) request.unmatchable = true;
    else request.patterns.push(pattern);
  }
  if (args.remaining > 0) {
    const keyword = args.atom('RETURN');
    if (keyword.toUpperCase() !== 'RETURN') throw new ImapSyntaxError('Expected RETURN');
    request.extended = true;
    const items = list(args.next('return options'), 'return options');
    for (let i = 0; i < items.length; i++) {
      const [option] = words([items[i]!], 'return option');
      if (option === 'SUBSCRIBED') request.returnSubscribed = true;
      else if (option === 'CHILDREN' || option === 'SPECIAL-USE') continue;
      else if (option === 'STATUS' && session.rev2) {
        const params = items[i + 1]?.type === 'list' ? items[++i]! : null;
        if (params?.type !== 'list') throw new ImapSyntaxError('STATUS needs a list of status items');
        request.statusItems = statusItems(params.items, session);
      } else {
        // return-option = option-extension: a name, optionally followed by its parameters in parentheses
        const params = items[i + 1]?.type === 'list' ? items[++i]! : null;
        request.returnExtensions.push({ name: option!, params });
      }
    }
  }
  args.end();
  return request;
}

function name(session: ImapSession, path: string): string {
  return literalOrQuoted(encodeMailboxName(path, session.utf8), { utf8: session.utf8 });
}

function matchers(reference: string, patterns: string[]): Array<(path: string) => boolean> {
  return patterns.filter((p) => p !== '').map((p) => patternMatcher(normalizeMailboxPath(reference + p)));
}

/**
 * `imap.maxListPatternLength` bounds the characters of reference + pattern, summed over the patterns of one
 * command (matching costs about path length × pattern length per mailbox). Over it: `NO [LIMIT]` (RFC 5530:
 * the command is well-formed and ran into a server limit; BAD is for syntax).
 */
function tooLong(session: ImapSession, reference: string, patterns: string[]): Outcome | null {
  const limit = session.app.config.imap.maxListPatternLength;
  let total = 0;
  for (const pattern of patterns) total += reference.length + pattern.length;
  return total > limit ? no(`Mailbox pattern too long (at most ${limit} characters)`, 'LIMIT') : null;
}

/**
 * Lets other sessions run during a long LIST: matching is linear, but a user with thousands of long mailbox
 * names and a maximal pattern still costs a few hundred ms; after SLICE_MS of work the loop yields a turn.
 */
const SLICE_MS = 20;

function yielder(): () => Promise<void> | null {
  let started = Date.now();
  return () => {
    if (Date.now() - started < SLICE_MS) return null;
    return new Promise<void>((resolve) => {
      setTimeout(() => {
        started = Date.now();
        resolve();
      }, 0);
    });
  };
}

export const listCommand = command({
  name: 'LIST',
  states: AUTHENTICATED,
  parse: parseList,
  async run(session, request) {
    const unhandled = request.returnExtensions[0];
    if (unhandled) return bad(`Unsupported return option ${unhandled.name.slice(0, 30)}`);
    const reference = request.reference;
    if (reference === null) return ok('LIST completed'); // a reference that is not modified UTF-7 matches nothing
    if (!request.unmatchable && request.patterns.every((p) => p === '')) {
      // the hierarchy delimiter and root of the reference (RFC 3501 §6.3.8)
      const root = reference.includes(DELIMITER) ? reference.slice(0, reference.indexOf(DELIMITER) + 1) : '';
      session.send(`* LIST (\\Noselect) "${DELIMITER}" ${name(session, root)}`);
      return ok('LIST completed');
    }
    const limited = tooLong(session, reference, request.patterns);
    if (limited) return limited;
    const tests = matchers(reference, request.patterns);
    if (tests.length === 0) return ok('LIST completed');
    const matches = (path: string): boolean => tests.some((test) => test(path));
    const { storage } = session.app;
    // subscriptions whose mailbox was deleted are listed only where subscriptions are selected
    const kept = request.subscribedOnly ? await keptSubscriptions(storage, session.userId) : [];
    const tree = buildTree(await storage.mailboxes.list(session.userId), kept);
    const pause = yielder();
    const childInfo = request.recursiveMatch ? await subscribedBelow(tree, matches, pause) : null;
    const showSubscribed = request.subscribedOnly || request.returnSubscribed;
    for (const node of tree) {
      await pause();
      if (!matches(node.path)) continue;
      const info = childInfo?.has(node.path) === true;
      if (request.subscribedOnly ? !node.subscribed && !info : !node.exists) continue;
      if (request.specialUseOnly && !(node.mailbox?.specialUse && node.mailbox.specialUse !== '\\Inbox')) continue;
      const attributes = baseAttributes(node);
      if (showSubscribed && node.subscribed) attributes.push('\\Subscribed');
      session.send(`* LIST (${attributes.join(' ')}) "${DELIMITER}" ${name(session, node.path)}${info ? ' ("CHILDINFO" ("SUBSCRIBED"))' : ''}`);
      // LIST-STATUS: a STATUS line after each selectable mailbox's LIST line (RFC 5819 §2)
      if (request.statusItems && node.mailbox) {
        session.send(`* STATUS ${name(session, node.path)} (${await statusValues(session, node.mailbox, request.statusItems)})`);
      }
    }
    return ok('LIST completed');
  },
});

/**
 * RECURSIVEMATCH with SUBSCRIBED (RFC 5258 §3.5): the names that get `CHILDINFO ("SUBSCRIBED")`, those with a
 * subscribed descendant that is not itself listed (no pattern matches it), whether or not the name itself is
 * subscribed. A subscribed child that the patterns list already speaks for itself.
 */
async function subscribedBelow(tree: readonly TreeNode[], matches: (path: string) => boolean, pause: () => Promise<void> | null): Promise<Set<string>> {
  const out = new Set<string>();
  for (const node of tree) {
    if (!node.subscribed) continue;
    await pause();
    if (matches(node.path)) continue;
    for (let at = node.path.lastIndexOf(DELIMITER); at > 0; at = node.path.lastIndexOf(DELIMITER, at - 1)) {
      const parent = node.path.slice(0, at);
      if (out.has(parent)) break; // its ancestors are marked already
      out.add(parent);
    }
  }
  return out;
}

/** LSUB: subscribed mailboxes; a level `%` stops at that is not itself subscribed is listed as \Noselect. */
export const lsubCommand = command({
  name: 'LSUB',
  states: AUTHENTICATED,
  parse(args, session) {
    const reference = patternText(args.next('reference'), session.utf8);
    const pattern = patternText(args.next('mailbox pattern'), session.utf8);
    args.end();
    return { reference, pattern };
  },
  async run(session, { reference, pattern }) {
    if (reference === null || pattern === null || pattern === '') return ok('LSUB completed');
    const limited = tooLong(session, reference, [pattern]);
    if (limited) return limited;
    const test = patternMatcher(normalizeMailboxPath(reference + pattern));
    const { storage } = session.app;
    const tree = buildTree(await storage.mailboxes.list(session.userId), await keptSubscriptions(storage, session.userId));
    const pause = yielder();
    for (const node of tree as TreeNode[]) {
      await pause();
      if (!test(node.path)) continue;
      if (node.subscribed) {
        // a name whose mailbox was deleted is \Noselect here (LSUB has no \NonExistent)
        const attributes = node.exists ? baseAttributes(node).filter((a) => a !== '\\Noselect') : ['\\Noselect'];
        session.send(`* LSUB (${attributes.join(' ')}) "${DELIMITER}" ${name(session, node.path)}`);
      } else if (node.hasSubscribedChild && pattern.endsWith('%')) {
        session.send(`* LSUB (\\Noselect) "${DELIMITER}" ${name(session, node.path)}`);
      }
    }
    return ok('LSUB completed');
  },
});
