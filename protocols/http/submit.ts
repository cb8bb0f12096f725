/**
 * Submission: compose and send (`POST /users/:user/submit`), or send a stored draft
 * (`POST /users/:user/mailboxes/:mailbox/messages/:message/submit`). Both end in `submitMessage`, so the
 * submission hooks decide: plugins/submission.ts hands the message to `delivery.relay` and answers once the
 * relay accepted it (no relay: 503 UNAVAILABLE), and plugins/sent-autosave.ts, when loaded, stores the \Seen
 * copy in Sent through `storeMessage` (quota applies) and reports it in submitMessage's result (`stored`). The
 * answer names that copy (`message.mailbox`, `id`) or `false` when none was saved, and the relay's queue id.
 *
 * After a send: a referenced message gets \Answered (reply) or $Forwarded (forward), and a replaced draft is
 * deleted, through the flags and expunge pipelines; failures there are logged, the message is already out.
 */
import { z } from 'zod';
import { expungeMessages, storeMessage, submitMessage, updateFlags } from '../../hooks/pipeline/index.ts';
import type { App } from '../app.ts';
import type { HookContext } from '../../hooks/context.ts';
import type { MessageRecord } from '../../storage/ports.ts';
import type { StoredCopy } from '../../hooks/types.ts';
import { ownsAddress } from '../../storage/addresses.ts';
import { ApiError } from './errors.ts';
import { unwrap } from './common.ts';
import { findMailbox } from './mailboxes.ts';
import { findMessage, messageParams } from './messages.ts';
import { flagFields } from './message-view.ts';
import { composeMessage, draftEnvelope, findReference, storedSource, submitBody } from './compose.ts';
import type { Reference } from './compose.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';
import { userParams } from './common.ts';

/** Scheduled sending needs a durable queue, which the relay plugin does not keep: only "now" is accepted. */
function checkSendTime(value: string | undefined): void {
  if (value === undefined) return;
  const at = Date.parse(value);
  if (!Number.isFinite(at)) throw new ApiError('InputValidationError', 'body.sendTime: expected a date', [{ path: 'body.sendTime', message: 'expected a date' }]);
  if (at > Date.now() + 60_000) {
    throw new ApiError('InputValidationError', 'body.sendTime: scheduled sending is not supported', [{ path: 'body.sendTime', message: 'scheduled sending is not supported' }]);
  }
}

/** The copy stored in Sent while the message was submitted (sent-autosave reports it), or null. */
async function sentCopy(app: App, userId: string, stored: readonly StoredCopy[]): Promise<StoredCopy | null> {
  if (stored.length === 0) return null;
  const sent = await app.storage.mailboxes.getBySpecialUse(userId, '\\Sent');
  return stored.find((copy) => copy.mailboxId === sent?.id) ?? stored[0]!;
}

async function markReference(app: App, ctx: HookContext, userId: string, ref: Reference): Promise<void> {
  const flag = ref.action === 'forward' ? '$Forwarded' : '\\Answered';
  const done = await updateFlags(app, ctx, { userId, mailboxId: ref.box.id, uids: [ref.record.uid], update: { action: 'add', flags: [flag] } });
  if (!done.ok) ctx.log.warn('could not flag the referenced message', { flag, code: done.verdict.code });
}

async function deleteDraft(app: App, ctx: HookContext, userId: string, draft: { box: { id: string }; record: MessageRecord }): Promise<void> {
  const done = await expungeMessages(app, ctx, { userId, mailboxId: draft.box.id, uids: [draft.record.uid] });
  if (!done.ok) ctx.log.warn('could not delete the replaced draft', { code: done.verdict.code });
}

/** JSON carries attachments as base64 (4/3 of their size). */
const submitMaxBody = (config: App['config']) => Math.ceil((config.limits.maxMessageSize * 4) / 3) + 65536;

const sentRef = z.union([z.string(), z.literal(false)]);

export const submitRoutes: Route[] = [
  route({
    method: 'POST',
    path: '/users/:user/submit',
    summary: 'Compose a message and send it through the outbound relay (saved to Sent), or only store it (uploadOnly / isDraft)',
    tag: 'Submission',
    access: 'owner',
    params: userParams,
    body: submitBody,
    maxBody: submitMaxBody,
    response: z.object({
      message: z.object({ mailbox: sentRef, id: z.union([z.number(), z.literal(false)]), queueId: sentRef }),
      rejected: z.array(z.string()).optional().describe('Addition: recipients the relay refused while it accepted the others'),
    }),
    async handler({ app, ctx, user, body }) {
      checkSendTime(body.sendTime);
      if (body.sess || body.ip) ctx.log.info('submit', { sess: body.sess, ip: body.ip });
      const ref = await findReference(app, user.id, body.reference);
      const draft = body.draft ? await findMessage(app, user.id, body.draft.mailbox, body.draft.id) : null;
      const { bytes, envelope } = await composeMessage(app, user, body, ref);

      if (body.uploadOnly || body.isDraft) {
        const target = body.mailbox
          ? await findMailbox(app, user.id, body.mailbox)
          : await app.storage.mailboxes.getBySpecialUse(user.id, body.isDraft ? '\\Drafts' : '\\Sent');
        if (!target) throw new ApiError('NoSuchMailbox', `The user has no ${body.isDraft ? 'Drafts' : 'Sent'} mailbox`);
        const flags = body.isDraft ? ['\\Seen', '\\Draft'] : ['\\Seen'];
        const stored = unwrap(await storeMessage(app, ctx, { userId: user.id, mailboxId: target.id, flags, internalDate: Date.now(), source: bytes, declaredSize: bytes.length }));
        if (draft && !(draft.box.id === target.id && draft.record.uid === stored.uid)) await deleteDraft(app, ctx, user.id, draft);
        return { message: { mailbox: target.id, id: stored.uid, queueId: false } };
      }

      if (envelope.to.length === 0) {
        throw new ApiError('InputValidationError', 'body.to: at least one recipient is required', [{ path: 'body.to', message: 'no recipients in to, cc, bcc or envelope.to' }]);
      }
      const queued = unwrap(await submitMessage(app, ctx, { userId: user.id, from: envelope.from, to: envelope.to, source: bytes }));
      const copy = await sentCopy(app, user.id, queued.stored);
      if (ref) await markReference(app, ctx, user.id, ref);
      if (draft) await deleteDraft(app, ctx, user.id, draft);
      return {
        message: { mailbox: copy?.mailboxId ?? false, id: copy?.uid ?? false, queueId: queued.id },
        ...(queued.rejected?.length ? { rejected: [...queued.rejected] } : {}),
      };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/mailboxes/:mailbox/messages/:message/submit',
    summary: 'Send a stored draft to its From/To/Cc/Bcc through the outbound relay; the draft is deleted once the Sent copy exists',
    tag: 'Submission',
    access: 'owner',
    params: messageParams,
    body: z.object({
      deleteFiles: z.boolean().optional().describe('Accepted for compatibility (there is no file store)'),
      sendTime: z.string().optional().describe('Scheduled sending is not supported: a time more than a minute ahead is refused'),
      sess: z.string().max(256).optional(),
      ip: z.string().max(64).optional(),
      deleteDraft: z.boolean().default(true).describe('Addition: false keeps the draft after sending'),
    }),
    response: z.object({
      queueId: z.string(),
      message: z.object({ id: z.number(), mailbox: z.string(), size: z.number() }).optional().describe('The copy saved to Sent, when one was saved'),
      rejected: z.array(z.string()).optional(),
    }),
    async handler({ app, ctx, user, params, body }) {
      checkSendTime(body.sendTime);
      const { box, record } = await findMessage(app, user.id, params.mailbox, params.message);
      if (!flagFields(record.flags).draft && box.specialUse !== '\\Drafts') throw new ApiError('MessageNotDraft');
      const envelope = draftEnvelope(record);
      if (!envelope.from || !(await ownsAddress(app.storage.users, user.id, envelope.from))) {
        throw new ApiError('InputValidationError', 'The draft\'s From address is not one of the user\'s addresses', [{ path: 'message.from', message: 'not one of the user\'s addresses' }]);
      }
      if (envelope.to.length === 0) throw new ApiError('InputValidationError', 'The draft has no recipients', [{ path: 'message.to', message: 'no recipients in To, Cc or Bcc' }]);
      const bytes = await storedSource(app, record);
      const queued = unwrap(await submitMessage(app, ctx, { userId: user.id, from: envelope.from, to: envelope.to, source: bytes }));
      const saved = await sentCopy(app, user.id, queued.stored);
      const copy = saved ? await app.storage.messages.get(saved.mailboxId, saved.uid) : null;
      if (copy && body.deleteDraft) await deleteDraft(app, ctx, user.id, { box, record });
      else if (body.deleteDraft) ctx.log.info('draft kept: no Sent copy was saved (is sent-autosave loaded?)');
      return {
        queueId: queued.id,
        ...(copy ? { message: { id: copy.uid, mailbox: copy.mailboxId, size: copy.size } } : {}),
        ...(queued.rejected?.length ? { rejected: [...queued.rejected] } : {}),
      };
    },
  }),
];
