/**
 * The delivery lines an operator reads, one per recipient, written by the delivery pipeline for every way mail
 * arrives (LMTP today):
 *
 *   {"msg":"delivery", ..., "recipient":"bob@example.com","outcome":"delivered","mailbox":"INBOX","uid":42,"messageId":"<…>","from":"…"}
 *   {"msg":"delivery", ..., "recipient":"nobody@example.com","at":"rcpt","outcome":"refused","code":"NONEXISTENT","from":"…"}
 *
 * `outcome`: delivered, duplicate (same Message-ID within the duplicate window: accepted, not stored again),
 * discarded (a filter dropped it), refused (for good) or deferred (try again later), with the verdict's `code`.
 * A recipient refused at RCPT time says `"at":"rcpt"`; the others are the outcomes after the message arrived.
 */
import type { HookContext } from '../context.ts';
import type { DeliveryResult } from '../types.ts';
import type { OperationResult, Verdict } from '../verdict.ts';

export const DELIVERY = 'delivery';

function refusal(verdict: Verdict): { outcome: 'refused' | 'deferred'; code: string; reason: string } {
  return { outcome: verdict.action === 'tempfail' ? 'deferred' : 'refused', code: verdict.code, reason: verdict.message };
}

/** A recipient refused before the message was sent (RCPT TO). `ctx` carries no recipient yet: it is named here. */
export function logRecipientRefused(ctx: HookContext, from: string, address: string, verdict: Verdict): void {
  ctx.log.info(DELIVERY, { recipient: address, at: 'rcpt', ...refusal(verdict), from });
}

/** One recipient's copy; `ctx` is the recipient's context (its logger names the recipient). */
export function logDelivery(ctx: HookContext, from: string, messageId: string | null, result: OperationResult<DeliveryResult>): void {
  const id = messageId ?? undefined;
  if (!result.ok) return ctx.log.info(DELIVERY, { ...refusal(result.verdict), messageId: id, from });
  const value = result.value;
  const outcome = value.duplicate ? 'duplicate' : value.stored ? 'delivered' : 'discarded';
  ctx.log.info(DELIVERY, { outcome, mailbox: value.mailboxPath ?? undefined, uid: value.stored?.uid, messageId: id, from });
}
