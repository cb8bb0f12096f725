/**
 * ESORT and CONTEXT=SORT (RFC 5267) as a built-in plugin, loaded by default with `imap-sort` (`['imap-esort', false]`
 * switches it off; with `['imap-sort', false]` it does nothing either), on the public hook API:
 *
 *   capabilities.for('imap')        announce ESORT and CONTEXT=SORT
 *   imap.command.for('SORT')        before imap-sort: a SORT with `RETURN (...)` is answered here with ESEARCH;
 *   imap.command.for('UID SORT')    without RETURN the tap steps aside and imap-sort answers `* SORT`
 *
 *   C: A1 SORT RETURN (MIN COUNT PARTIAL 1:2) (REVERSE ARRIVAL) UTF-8 ALL
 *   S: * ESEARCH (TAG "A1") MIN 5 COUNT 5 PARTIAL (1:2 5,4)
 *   S: A1 OK SORT completed
 *
 * MIN and MAX are the first and last message in sort order, ALL and PARTIAL keep the order (RFC 5267 §3). SAVE keeps
 * the result for `$` (RFC 5182); UPDATE keeps it up to date (`ADDTO (position n)` / `REMOVEFROM (position n)` in sort
 * order) through the session (`selected.keepUpdated`), until CANCELUPDATE. Parsing of the sort criteria and the sort
 * itself are imap-sort's (`parseSortArgs`, `sortedMatches`); the RETURN codec is the built-in SEARCH's.
 */
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { answersEsearch, esearchLine, imapInput, parseReturnOptions, savedMatches } from '../hooks/imap.ts';
import type { ImapCommandResult, ImapToken } from '../hooks/imap.ts';
import { sortUids } from '../storage/sort/sort.ts';
import { IMAP_SORT_PLUGIN, parseSortArgs, selectedOrBad, sortedMatches } from './imap-sort.ts';

export const IMAP_ESORT_PLUGIN = 'imap-esort';

/** RETURN options SORT takes: all of SEARCH's. */
const SORT_RETURN_OPTIONS: ReadonlySet<string> = new Set(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE', 'UPDATE', 'PARTIAL']);

export const imapEsortPlugin = definePlugin({
  description: 'IMAP ESORT and CONTEXT=SORT (RFC 5267): SORT RETURN (MIN MAX ALL COUNT SAVE UPDATE PARTIAL) answered with ESEARCH (loaded by default)',
  create() {
    return {
      name: IMAP_ESORT_PLUGIN,
      apply(api: PluginApi) {
        // ESORT extends SORT: with imap-sort switched off (['imap-sort', false]) there is nothing to extend
        if (api.config.plugins.some((entry) => Array.isArray(entry) && entry[0] === IMAP_SORT_PLUGIN && entry[1] === false)) return;
        api.hooks.capabilities.for('imap').tap(IMAP_ESORT_PLUGIN, (caps) => [...caps, 'ESORT', 'CONTEXT=SORT']);
        for (const uid of [false, true]) {
          const verb = uid ? 'UID SORT' : 'SORT';
          const tap = { name: IMAP_ESORT_PLUGIN, before: IMAP_SORT_PLUGIN };
          api.hooks.imap.command.for(verb).tapPromise(tap, async (ctx, raw): Promise<ImapCommandResult | undefined> => {
            const input = imapInput(raw);
            const tokens = Array.isArray(input.args) ? (input.args as ImapToken[]) : [];
            const first = tokens[0];
            if (!first || first.type !== 'atom' || first.value.toUpperCase() !== 'RETURN') return undefined; // plain SORT
            const selected = selectedOrBad(ctx, input);
            if (!('search' in selected)) return selected;
            let options;
            try {
              options = parseReturnOptions(tokens[1], SORT_RETURN_OPTIONS);
            } catch (err) {
              return { status: 'BAD', text: (err as Error).message };
            }
            const sort = parseSortArgs(tokens.slice(2));
            if (!('criteria' in sort)) return sort;
            const sorted = await sortedMatches(api.storage, selected, sort);
            if (!('uids' in sorted)) {
              if (options.save) selected.saveResult([]); // a failed search leaves `$` empty (RFC 5182 §2.1)
              return sorted;
            }
            const untagged: string[] = [];
            if (options.update) {
              const order = (uids: number[]) => sortUids(api.storage.messages, selected.mailboxId, uids, sort.criteria);
              if (!selected.keepUpdated(input.tag, uid, sorted.uids, order)) {
                untagged.push(`* NO [NOUPDATE "${input.tag.replace(/[\\"]/g, '')}"] Too many searches kept up to date`);
              }
            }
            if (options.save) selected.saveResult(savedMatches(sorted.uids, options)); // MIN / MAX alone: those only
            if (answersEsearch(options)) {
              const numbers = uid ? sorted.uids : sorted.uids.map((u) => selected.seqOf(u));
              const modseqs = sorted.highestModseq !== null ? sorted.uids.map((u) => selected.modseqOf(u)) : undefined;
              untagged.push(esearchLine(options, { tag: input.tag, uid, numbers, ordered: true, ...(modseqs ? { modseqs } : {}) }));
            }
            return { untagged, text: `${verb} completed`, expunge: uid };
          });
        }
      },
    };
  },
});

/** The plugin as protocols/app.ts loads it by default. */
export function createImapEsortPlugin() {
  return imapEsortPlugin.create({});
}
