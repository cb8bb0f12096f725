/**
 * The selected mailbox as command hooks see it (hooks/imap.ts ImapSelectedMailbox): the session's UID ↔ sequence
 * view and the built-in SEARCH (parser here, evaluator in storage/search), so a plugin command such as SORT or THREAD
 * runs its search criteria exactly as SEARCH does, `$` (SEARCHRES, RFC 5182) included.
 */
import type { ImapCommandResult, ImapSearchMatches, ImapSelectedMailbox } from '../../hooks/imap.ts';
import { search } from '../../storage/search/evaluate.ts';
import { mailboxSearchSources } from '../../storage/search/loaders.ts';
import { parseSearch } from './search.ts';
import { ImapSyntaxError } from './types.ts';
import type { ImapToken } from './types.ts';
import type { ImapSession } from './session.ts';

export function selectedForPlugins(session: ImapSession): ImapSelectedMailbox | undefined {
  const view = session.selected;
  if (!view || session.state !== 'selected') return undefined;
  return {
    mailboxId: view.mailbox.id,
    uids: () => view.uids(),
    seqOf: (uid) => view.seqOf(uid),
    async search(keys: readonly ImapToken[], charset: string | null): Promise<ImapSearchMatches | ImapCommandResult> {
      let query;
      try {
        const tokens: ImapToken[] = charset === null ? [...keys] : [{ type: 'atom', value: 'CHARSET' }, { type: 'atom', value: charset }, ...keys];
        query = parseSearch(tokens, { utf8: session.utf8, saved: session.searches.savedUids(view) });
      } catch (err) {
        if (!(err instanceof ImapSyntaxError)) throw err;
        if (err.code === 'BADCHARSET') return { status: 'NO', code: 'BADCHARSET (UTF-8 US-ASCII)', text: err.message };
        return { status: err.status, code: err.code ?? null, text: err.message };
      }
      if (query.usesModseq) session.enable('CONDSTORE');
      const result = await search(query, { entries: view.viewEntries(), recent: view.recent, ...mailboxSearchSources(session.app.storage, view.mailbox.id) });
      const uids = result.uids.filter((u) => !view.isExpunged(u));
      return { status: 'OK', uids, highestModseq: uids.length > 0 ? result.highestModseq : null };
    },
  };
}
