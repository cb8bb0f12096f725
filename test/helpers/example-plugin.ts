/**
 * The worked example from plugins/README.md (kept here so the guide's code is compiled and tested):
 * a "frozen folders" plugin. Messages can't be stored, copied or moved into mailboxes whose path starts with
 * one of the configured prefixes, on every way in (IMAP APPEND/COPY/MOVE, LMTP, HTTP), and each refusal is
 * logged.
 */
import { z } from 'zod';
import { definePlugin, deny, POLICY } from '../../hooks/index.ts';

export const frozenFolders = definePlugin({
  description: 'Refuses new messages in frozen mailboxes (e.g. legal-hold archives)',
  optionsSchema: z.object({
    prefixes: z.array(z.string().min(1)).min(1),
    message: z.string(),
  }),
  defaults: { message: 'This mailbox is frozen' },
  create(options) {
    const isFrozen = (path: string) => options.prefixes.some((p) => path === p || path.startsWith(p + '/'));
    return {
      name: 'frozen-folders',
      apply(api) {
        // One check for every way a message can land in a mailbox.
        const guard = async (targetMailboxId: string) => {
          const mailbox = await api.storage.mailboxes.get(targetMailboxId);
          if (!mailbox || !isFrozen(mailbox.path)) return undefined; // no opinion: later taps and storage decide
          api.log.info('refused a message for a frozen mailbox', { path: mailbox.path });
          return deny('CANNOT', options.message);
        };
        api.hooks.message.beforeStore.tapPromise({ stage: POLICY }, (_ctx, request) => guard(request.mailboxId));
        api.hooks.message.beforeCopy.tapPromise({ stage: POLICY }, (_ctx, input) => guard(input.targetMailboxId));
        api.hooks.message.beforeMove.tapPromise({ stage: POLICY }, (_ctx, input) => guard(input.targetMailboxId));
      },
    };
  },
});
