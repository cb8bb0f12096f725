/**
 * LIST-STATUS (RFC 5819) as a plugin, built only on the public hook API (hooks/index.ts) and read ports:
 *
 *   capabilities.for('imap')   announce LIST-STATUS
 *   imap.command.for('LIST')   when the client asked `RETURN (STATUS (...))`: take that option out, run the
 *                              built-in LIST through `input.next()`, and answer its lines with a
 *                              `* STATUS` line after each selectable mailbox's LIST line
 *
 *   C: A1 LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))
 *   S: * LIST (\HasNoChildren) "/" INBOX
 *   S: * STATUS INBOX (MESSAGES 17 UNSEEN 16)
 *   S: * LIST (\Noselect \HasChildren) "/" Archive          (no STATUS for \Noselect)
 *   S: A1 OK LIST completed
 *
 * The plugin guide (plugins/README.md) walks through this file. Loaded with `plugins: ['list-status']`.
 */
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { imapInput, imapObjectId, mailboxPath } from '../hooks/imap.ts';
import type { ImapCommandResult, ImapToken } from '../hooks/imap.ts';
import type { StorageReader } from '../hooks/storage-reader.ts';

export const LIST_STATUS_PLUGIN = 'list-status';

/** STATUS items this plugin answers (RFC 3501, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 8474 MAILBOXID). */
const ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'MAILBOXID']);

/** What the built-in LIST's parser hands the command hook (protocols/imap/cmd-list.ts `ListRequest`). */
interface ListArgs {
  readonly returnExtensions: ReadonlyArray<{ name: string; params: ImapToken | null }>;
}

/** The STATUS items asked for, or a BAD text. */
function statusItems(params: ImapToken | null): string[] | string {
  if (!params || params.type !== 'list' || params.items.length === 0) return 'STATUS needs a list of status items';
  const items: string[] = [];
  for (const token of params.items) {
    const item = token.type === 'atom' ? token.value.toUpperCase() : '';
    if (!ITEMS.has(item)) return 'Invalid status item';
    if (!items.includes(item)) items.push(item);
  }
  return items;
}

/**
 * Splits `* LIST (attributes) "/" name[ extended data]` into its attributes and the mailbox name as written
 * (quoted string, literal or atom), which the STATUS line repeats verbatim.
 */
export function parseListLine(line: string): { attributes: string[]; name: string; text: string } | null {
  const head = /^\* LIST \(([^)]*)\) (?:"(?:\\.|[^"\\])*"|NIL) /.exec(line);
  if (!head) return null;
  const rest = line.slice(head[0].length);
  let name: string;
  let text: string;
  if (rest.startsWith('"')) {
    const m = /^"((?:\\.|[^"\\])*)"/.exec(rest);
    if (!m) return null;
    name = m[0];
    text = m[1]!.replace(/\\(.)/g, '$1');
  } else if (rest.startsWith('{')) {
    const m = /^\{(\d+)\}\r\n/.exec(rest);
    if (!m) return null;
    const bytes = new TextEncoder().encode(rest.slice(m[0].length)).subarray(0, Number(m[1]));
    text = new TextDecoder().decode(bytes);
    name = m[0] + text;
  } else {
    name = rest.split(' ')[0]!;
    text = name;
  }
  return { attributes: head[1]!.split(' ').filter(Boolean), name, text };
}

async function statusValues(storage: StorageReader, userId: string, path: string, items: string[]): Promise<string | null> {
  const mailbox = await storage.mailboxes.getByPath(userId, path);
  if (!mailbox) return null;
  const counters = await storage.mailboxes.counters(mailbox.id);
  const value = (item: string): number | string => {
    switch (item) {
      case 'MESSAGES':
        return counters.messages;
      case 'UIDNEXT':
        return mailbox.uidNext;
      case 'UIDVALIDITY':
        return mailbox.uidValidity;
      case 'UNSEEN':
        return counters.unseen;
      case 'HIGHESTMODSEQ':
        return mailbox.highestModseq;
      case 'SIZE':
        return counters.size;
      case 'MAILBOXID':
        return `(${imapObjectId('mailbox', mailbox.id)})`;
      default:
        return 0; // RECENT: which session a message is recent in is the IMAP session's business; IMAP4rev2 dropped it
    }
  };
  return items.map((item) => `${item} ${value(item)}`).join(' ');
}

export const listStatusPlugin = definePlugin({
  description: 'IMAP LIST-STATUS (RFC 5819): STATUS answers inside LIST',
  create() {
    return {
      name: LIST_STATUS_PLUGIN,
      apply(api: PluginApi) {
        // 1. Tell clients the extension exists.
        api.hooks.capabilities.for('imap').tap(LIST_STATUS_PLUGIN, (caps) => [...caps, 'LIST-STATUS']);

        // 2. Extend LIST. Returning undefined leaves the command to the built-in handler (or the next plugin).
        api.hooks.imap.command.for('LIST').tapPromise(LIST_STATUS_PLUGIN, async (ctx, raw): Promise<ImapCommandResult | undefined> => {
          const input = imapInput(raw);
          const args = input.args as ListArgs;
          const status = args.returnExtensions.find((option) => option.name === 'STATUS');
          if (!status || !input.next) return undefined;
          const items = statusItems(status.params);
          if (typeof items === 'string') return { status: 'BAD', text: items };

          // 3. Run the built-in LIST without the option we handle; its lines come back to us, unwritten.
          const listed = await input.next({ ...args, returnExtensions: args.returnExtensions.filter((option) => option !== status) });
          if (listed.status !== 'OK') return listed;

          // 4. After each selectable mailbox's LIST line, its STATUS line (read ports only, nothing written).
          const userId = ctx.session.user!.id;
          const untagged: string[] = [];
          for (const line of listed.untagged) {
            untagged.push(line);
            const entry = parseListLine(line);
            if (!entry || entry.attributes.some((a) => /^\\(noselect|nonexistent)$/i.test(a))) continue;
            let path: string;
            try {
              path = mailboxPath(entry.text, input.utf8);
            } catch {
              continue;
            }
            const values = await statusValues(api.storage, userId, path, items);
            if (values !== null) untagged.push(`* STATUS ${entry.name} (${values})`);
          }
          return { untagged, status: 'OK', code: listed.code, text: listed.text };
        });
      },
    };
  },
});
