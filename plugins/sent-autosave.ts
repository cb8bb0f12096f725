/**
 * Sent autosave, Gmail-like: a message the user submits through the server (`submitMessage`: HTTP submit, SMTP
 * submission) is stored in their `\Sent` mailbox, flagged `\Seen`, through `storeMessage` — so quota, rewriting
 * and every other rule apply as for any other store. Mail clients usually APPEND their own copy to Sent right
 * after sending; when that copy (same Message-ID) arrives within `windowMs`, the server answers OK with the
 * saved copy's UID (`OK [APPENDUID v uid]`) and stores no second one.
 *
 *   submission.afterSubmit   OBSERVE  store the copy (api.pipeline.storeMessage), report it to the caller
 *                                     (`submitted.recordStored`: HTTP answers with it), remember its
 *                                     Message-ID in the ephemeral store for windowMs
 *   message.store            GUARD    an APPEND to \Sent with a remembered Message-ID: answer the saved message
 *                                     (`existingMessage()`): nothing written, staged blobs discarded
 *
 * Messages without a Message-ID are saved but never de-duplicated. Failing to save is logged; the submission
 * has already succeeded.
 */
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { GUARD, OBSERVE } from '../hooks/stages.ts';
import { existingMessage } from '../hooks/pipeline/store-message.ts';
import { collectBytes } from '../storage/bytes.ts';
import { getHeader, parseHeaderBlock } from '../storage/mime/headers.ts';

export const SENT_AUTOSAVE_PLUGIN = 'sent-autosave';

const optionsSchema = z.object({ windowMs: z.number().int().nonnegative() }).strict();
export type SentAutosaveOptions = z.output<typeof optionsSchema>;

function key(mailboxId: string, messageId: string): string {
  return `sent-autosave:${mailboxId}:${messageId}`;
}

/** The Message-ID header of a raw message (first one), trimmed; null without one. */
export function headerMessageId(bytes: Uint8Array): string | null {
  let end = bytes.length;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0x0a && (bytes[i + 1] === 0x0a || (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a))) {
      end = i + 1;
      break;
    }
  }
  const value = getHeader(parseHeaderBlock(bytes.subarray(0, end)), 'message-id')?.trim();
  return value ? value : null;
}

export const sentAutosavePlugin = definePlugin<SentAutosaveOptions>({
  description: 'Stores submitted messages in Sent and swallows the client’s duplicate APPEND',
  optionsSchema,
  defaults: { windowMs: 10 * 60 * 1000 },
  create(options) {
    return {
      name: SENT_AUTOSAVE_PLUGIN,
      apply(api: PluginApi) {
        const { ephemeral } = api.storage;

        api.hooks.submission.afterSubmit.tapPromise({ stage: OBSERVE }, async (ctx, submitted) => {
          const sent = await api.storage.mailboxes.getBySpecialUse(submitted.userId, '\\Sent');
          if (!sent) {
            ctx.log.warn('no Sent mailbox: submitted message not saved', { userId: submitted.userId });
            return;
          }
          const bytes = await collectBytes(submitted.open());
          const stored = await api.pipeline.storeMessage(ctx, {
            userId: submitted.userId,
            mailboxId: sent.id,
            flags: ['\\Seen'],
            internalDate: Date.now(),
            source: bytes,
            declaredSize: bytes.length,
          });
          if (!stored.ok) {
            ctx.log.warn('could not save the submitted message to Sent', { code: stored.verdict.code });
            return;
          }
          submitted.recordStored({ mailboxId: sent.id, uid: stored.value.uid, id: stored.value.id });
          const messageId = headerMessageId(bytes);
          if (messageId && options.windowMs > 0) {
            const k = key(sent.id, messageId);
            await ephemeral.del(k);
            await ephemeral.incr(k, stored.value.uid, options.windowMs);
          }
          ctx.log.info('saved submitted message to Sent', { uid: stored.value.uid });
        });

        api.hooks.message.store.tapPromise({ stage: GUARD, label: 'dedupe Sent' }, async (_ctx, input) => {
          const messageId = input.message.messageId?.trim();
          if (!messageId || options.windowMs === 0) return undefined;
          const uid = await ephemeral.get(key(input.mailboxId, messageId));
          if (!uid) return undefined;
          const saved = await api.storage.messages.get(input.mailboxId, uid);
          if (!saved || saved.messageId?.trim() !== messageId) return undefined; // expunged meanwhile
          const mailbox = await api.storage.mailboxes.get(input.mailboxId);
          if (!mailbox) return undefined;
          return existingMessage({ id: saved.id, uid: saved.uid, modseq: saved.modseq, uidValidity: mailbox.uidValidity, threadId: saved.threadId });
        });
      },
    };
  },
});
