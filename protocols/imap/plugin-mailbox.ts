/**
 * The selected mailbox as command hooks see it (hooks/imap.ts ImapSelectedMailbox): the session's UID ↔ sequence
 * view and the built-in SEARCH (parser here, evaluator in storage/search), so a plugin command such as SORT or THREAD
 * runs its search criteria exactly as SEARCH does (`$` included), and the session's saved and live results
 * (search-context.ts) for ESORT's SAVE and CONTEXT=SORT's UPDATE.
 */
import type { ImapCommandResult, ImapSearchMatches, ImapSelectedMailbox } from '../../hooks/imap.ts';
import { search } from '../../storage/search/evaluate.ts';
import { mailboxSearchSources } from '../../storage/search/loaders.ts';
import { parseSearch } from './search.ts';
import type { SearchQuery } from './search.ts';
import { MAX_LIVE_SEARCHES } from './search-context.ts';
import type { SelectedMailbox } from './selected.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';
import type { ImapSession } from './session.ts';

export function selectedForPlugins(session: ImapSession): ImapSelectedMailbox | undefined {
  const view = session.selected;
  if (!view || session.state !== 'selected') return undefined;
  // the last search() of the command, with the mailbox's mark before it ran: keepUpdated() keeps that one
  let last: { query: SearchQuery; mark: SelectedMailbox['changeMark'] } | null = null;
  return {
    modseqOf: (uid) => view.entry(uid)?.modseq ?? 0,
    saveResult: (uids) => session.searches.save(uids),
    keepUpdated(tag, uid, matches, order) {
      if (!last) throw new Error('keepUpdated() needs a search() first');
      if (!session.searches.hasLive(tag) && session.searches.liveCount >= MAX_LIVE_SEARCHES) return false;
      session.searches.keep(tag, uid, last.query, matches, last.mark, order);
      return true;
    },
    mailboxId: view.mailbox.id,
    uids: () => view.uids(),
    seqOf: (uid) => view.seqOf(uid),
    async search(keys: readonly ImapToken[], charset: string | null): Promise<ImapSearchMatches | ImapCommandResult> {
      let query;
      try {
        const tokens: ImapToken[] = charset === null ? [...keys] : [{ type: 'atom', value: 'CHARSET' }, { type: 'atom', value: charset }, ...keys];
        query = parseSearch(tokens, { utf8: session.utf8, saved: () => session.searches.savedUids(view) });
      } catch (err) {
        if (!(err instanceof ImapSyntaxError)) throw err;
        if (err.code === 'BADCHARSET') return { status: 'NO', code: 'BADCHARSET (UTF-8 US-ASCII)', text: err.message };
        return { status: err.status, code: err.code ?? null, text: err.message };
      }
      if (query.usesModseq) session.enable('CONDSTORE');
      last = { query, mark: view.changeMark };
      const result = await search(query, { entries: view.viewEntries(), recent: view.recent, ...mailboxSearchSources(session.app.storage, view.mailbox.id) });
      const uids = result.uids.filter((u) => !view.isExpunged(u));
      return { status: 'OK', uids, highestModseq: uids.length > 0 ? result.highestModseq : null };
    },
  };
}
