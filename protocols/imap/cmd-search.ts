/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4) with their extensions: ESEARCH's `RETURN (MIN MAX ALL COUNT)` (RFC 4731),
 * SEARCHRES's `RETURN (SAVE)` and `$` (RFC 5182), CONTEXT=SEARCH's `RETURN (UPDATE)`, `RETURN (PARTIAL m:n)` and
 * CANCELUPDATE (RFC 5267, RFC 9394). Parsing is search.ts (criteria) and hooks/imap-esearch.ts (RETURN, the ESEARCH
 * line); evaluation is storage/search/evaluate.ts; the saved and live results are the session's `searches`
 * (search-context.ts).
 */
import { search } from '../../storage/search/evaluate.ts';
import { mailboxSearchSources } from '../../storage/search/loaders.ts';
import { astring } from './args.ts';
import { SELECTED, command } from './command.ts';
import type { CommandSpec } from './command.ts';
import { parseSearch } from './search.ts';
import type { SearchQuery } from './search.ts';
import { MAX_LIVE_SEARCHES } from './search-context.ts';
import { answersEsearch, esearchLine, parseReturnOptions, savedMatches } from '../../hooks/imap-esearch.ts';
import type { ReturnOptions } from '../../hooks/imap-esearch.ts';
import { bad, ok } from './responses.ts';
import { ImapSyntaxError } from './types.ts';

interface SearchRequest {
  query: SearchQuery;
  /** RETURN (...) given (ESEARCH), or null for the RFC 3501 `* SEARCH` answer. */
  options: ReturnOptions | null;
}

function searchCommand(uid: boolean): CommandSpec<unknown> {
  const name = uid ? 'UID SEARCH' : 'SEARCH';
  return command<SearchRequest>({
    name,
    states: SELECTED,
    expunge: uid,
    parse(args, session) {
      let options: ReturnOptions | null = null;
      const first = args.peek();
      if (first?.type === 'atom' && !first.section && first.value.toUpperCase() === 'RETURN') {
        args.next('RETURN');
        options = parseReturnOptions(args.next('RETURN options'));
      }
      const view = session.selected;
      const saved = () => (view ? session.searches.savedUids(view) : []);
      try {
        return { query: parseSearch(args.rest(), { utf8: session.utf8, saved }), options };
      } catch (err) {
        // a SEARCH that fails leaves `$` empty (RFC 5182 §2.1)
        if (options?.save) session.searches.save([]);
        throw err;
      }
    },
    async run(session, { query, options }, _ctx, command) {
      const view = session.selected!;
      const { storage } = session.app;
      if (query.usesModseq) session.enable('CONDSTORE');
      if (options?.update && !session.searches.hasLive(command.tag) && session.searches.liveCount >= MAX_LIVE_SEARCHES) {
        session.send(`* NO [NOUPDATE "${command.tag.replace(/[\\"]/g, '')}"] Too many searches kept up to date`);
        options = { ...options, update: false };
      }
      const mark = view.changeMark; // changes after this are re-evaluated for a live result
      let found: number[];
      let highestModseq: number | null;
      try {
        const result = await search(query, { entries: view.viewEntries(), recent: view.recent, ...mailboxSearchSources(storage, view.mailbox.id) });
        found = result.uids.filter((u) => !view.isExpunged(u));
        highestModseq = result.highestModseq;
      } catch (err) {
        if (options?.save) session.searches.save([]);
        throw err;
      }
      const numbers = uid ? found : found.map((u) => view.seqOf(u));
      // IMAP4rev2 (RFC 9051 §6.4.4) answers every SEARCH with ESEARCH, as RETURN () would
      const esearch = options ?? (session.rev2 ? parseReturnOptions({ type: 'list', items: [] }) : null);
      if (!esearch) {
        const modseq = highestModseq !== null && found.length > 0 ? ` (MODSEQ ${highestModseq})` : '';
        session.send(`* SEARCH${numbers.map((n) => ` ${n}`).join('')}${modseq}`);
        return ok(`${name} completed`);
      }
      if (esearch.save) session.searches.save(savedMatches(found, esearch));
      if (answersEsearch(esearch)) {
        const modseqs = query.usesModseq ? found.map((u) => view.entry(u)?.modseq ?? 0) : undefined;
        session.send(esearchLine(esearch, { tag: command.tag, uid, numbers, ...(modseqs ? { modseqs } : {}) }));
      }
      if (esearch.update) session.searches.keep(command.tag, uid, query, found, mark);
      return ok(`${name} completed`);
    },
  });
}

/** CANCELUPDATE "tag" ... (RFC 5267 §4.3): ends live results; a tag without one is BAD. */
const cancelUpdate = command<string[]>({
  name: 'CANCELUPDATE',
  states: SELECTED,
  parse(args) {
    const tags: string[] = [];
    while (args.remaining > 0) tags.push(astring(args.next('tag'), 'tag'));
    if (tags.length === 0) throw new ImapSyntaxError('CANCELUPDATE expects the tag of a search');
    return tags;
  },
  async run(session, tags) {
    const unknown = tags.filter((tag) => !session.searches.cancel(tag));
    if (unknown.length > 0) return bad(`No search kept up to date for ${unknown.join(' ')}`);
    return ok('CANCELUPDATE completed');
  },
});

export const SEARCH_COMMANDS: CommandSpec<unknown>[] = [searchCommand(false), searchCommand(true), cancelUpdate];
