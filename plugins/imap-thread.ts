/**
 * THREAD (RFC 5256) with THREAD=ORDEREDSUBJECT, THREAD=REFERENCES and THREAD=REFS as a built-in plugin, loaded by
 * default (`['imap-thread', false]` switches it off), on the public hook API:
 *
 *   capabilities.for('imap')          announce the three algorithms
 *   imap.command.for('THREAD')        run the built-in search on the selected mailbox (input.selected.search), thread
 *   imap.command.for('UID THREAD')    its matches (storage/sort/thread.ts over messages.sortData: subjects, dates,
 *                                     Message-ID, In-Reply-To and References as stored, no message parsed), answer
 *
 *   C: A1 THREAD REFERENCES UTF-8 ALL
 *   S: * THREAD (2)(3 6 (4 23)(44 7 96))
 *   S: A1 OK THREAD completed
 */
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { imapInput, tokenText } from '../hooks/imap.ts';
import type { ImapCommandResult, ImapToken } from '../hooks/imap.ts';
import { formatThread, threadMessages, THREAD_ALGORITHMS } from '../storage/sort/thread.ts';
import type { ThreadAlgorithm } from '../storage/sort/thread.ts';
import { selectedOrBad } from './imap-sort.ts';

export const IMAP_THREAD_PLUGIN = 'imap-thread';

export interface ThreadArgs {
  algorithm: ThreadAlgorithm;
  charset: string;
  keys: ImapToken[];
}

/** `algorithm charset search-keys` → ThreadArgs, or the BAD result. */
export function parseThreadArgs(args: unknown): ThreadArgs | ImapCommandResult {
  const tokens = Array.isArray(args) ? (args as ImapToken[]) : [];
  const name = tokens[0]?.type === 'atom' ? tokens[0].value.toLowerCase() : null;
  if (!name) return { status: 'BAD', text: 'THREAD expects a threading algorithm' };
  if (!(THREAD_ALGORITHMS as readonly string[]).includes(name)) return { status: 'BAD', text: 'Unknown threading algorithm' };
  const charset = tokenText(tokens[1]);
  if (!charset) return { status: 'BAD', text: 'THREAD expects a charset' };
  if (tokens.length < 3) return { status: 'BAD', text: 'THREAD expects search criteria' };
  return { algorithm: name as ThreadAlgorithm, charset, keys: tokens.slice(2) };
}

export const imapThreadPlugin = definePlugin({
  description: 'IMAP THREAD (RFC 5256): ORDEREDSUBJECT, REFERENCES and REFS threads from stored envelope data (loaded by default)',
  create() {
    return {
      name: IMAP_THREAD_PLUGIN,
      apply(api: PluginApi) {
        api.hooks.capabilities.for('imap').tap(IMAP_THREAD_PLUGIN, (caps) => [...caps, 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES', 'THREAD=REFS']);
        for (const uid of [false, true]) {
          const verb = uid ? 'UID THREAD' : 'THREAD';
          api.hooks.imap.command.for(verb).tapPromise(IMAP_THREAD_PLUGIN, async (ctx, raw): Promise<ImapCommandResult> => {
            const input = imapInput(raw);
            const selected = selectedOrBad(ctx, input);
            if (!('search' in selected)) return selected;
            const thread = parseThreadArgs(input.args);
            if (!('algorithm' in thread)) return thread;
            const found = await selected.search(thread.keys, thread.charset);
            if (!('uids' in found)) return found;
            const data = found.uids.length === 0 ? [] : await api.storage.messages.sortData(selected.mailboxId, found.uids, { subject: true, date: true, threading: thread.algorithm !== 'orderedsubject' });
            const number = uid ? (u: number) => u : (u: number) => selected.seqOf(u);
            const threads = threadMessages(data, thread.algorithm).map((node) => formatThread(node, number));
            return { untagged: [`* THREAD${threads.length ? ' ' : ''}${threads.join('')}`], text: `${verb} completed`, expunge: uid };
          });
        }
      },
    };
  },
});

/** The plugin as protocols/app.ts loads it by default. */
export function createImapThreadPlugin() {
  return imapThreadPlugin.create({});
}
