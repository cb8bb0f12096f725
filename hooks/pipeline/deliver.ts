/**
 * Delivery to local users: the one way mail from outside reaches a mailbox (LMTP now, HTTP later).
 *
 * resolveRecipient (RCPT time, before any bytes):
 *   address → user (case-insensitive, IDN, +tag)  ── NONEXISTENT / CLIENTBUG
 *   delivery.beforeRecipient   policy              ── verdict
 *
 * deliverMessage, per recipient, in order (a user named twice in one transaction, by any of their addresses, gets
 * one copy; the repeats share the first one's outcome, as duplicates):
 *   delivery.beforeDeliver     policy              ── verdict for this copy
 *   duplicate check            same Message-ID to the same user within delivery.duplicateWindowSeconds
 *                                                  ── accepted, stored once (the claim is asked for here and
 *                                                     its answer awaited just before the commit)
 *   delivery.route             filters, spam, forwarding targets (waterfall over DeliveryRoute)
 *   storeMessage               Return-Path + Delivered-To prepended as a stream; message.beforeStore (quota)
 *                              applies                 ── verdict for this copy (a duplicate's answer wins)
 *                              The message is parsed (hashed, its attachments staged and compressed) once for all
 *                              recipients: each copy is that parse with its trace headers put in front
 *                              (storage/mime/prepend.ts), unless a message.prepare tap rewrote this copy's stream,
 *                              which is then parsed on its own.
 *   delivery.afterDeliver      forwarding, autoreply, notifications (errors logged only); after the copy's outcome
 *                              was reported (onOutcome: the LMTP reply is on its way meanwhile)
 *   app.metrics                wildduck_deliveries_total{outcome,code}
 */
import { createContext } from '../context.ts';
import type { HookContext } from '../context.ts';
import type { AppendResult, Id, IngestedMessage, MailboxRecord } from '../../storage/ports.ts';
import { StorageError } from '../../storage/ports.ts';
import { resolveAddress } from '../../storage/users.ts';
import { concatBytes } from '../../storage/bytes.ts';
import { getHeader, parseHeaderBlock } from '../../storage/mime/headers.ts';
import type { HeaderField } from '../../storage/mime/headers.ts';
import type { DeliveryRecipient, DeliveryRequest, DeliveryResult, DeliveryRoute, MessageSource, RecipientRequest } from '../types.ts';
import { deny, fail, ok, tempfail } from '../verdict.ts';
import type { OperationResult } from '../verdict.ts';
import { runAfter, runBefore, runHook } from './run.ts';
import type { PipelineApp } from './run.ts';
import { storeMessageWhen } from './store-message.ts';
import type { PreIngested } from './store-message.ts';
import { withHeaderPrefix } from '../../storage/mime/prepend.ts';
import type { Logger } from '../log.ts';
import { logDelivery, logRecipientRefused } from './delivery-log.ts';

/** The message being delivered: re-readable, with its size known (e.g. storage/spool.ts Spool). */
export interface DeliverySource {
  readonly size: number;
  open(): MessageSource;
}

export interface DeliverInput {
  /** Envelope sender; '' for the null sender `<>`. */
  readonly from: string;
  readonly recipients: readonly DeliveryRecipient[];
  readonly message: DeliverySource;
  /** ms since epoch; default now. */
  readonly internalDate?: number;
  /** Called once per recipient as soon as its outcome is known (in recipient order). */
  readonly onOutcome?: (index: number, outcome: DeliveryOutcome) => void | Promise<void>;
}

export interface DeliveryOutcome {
  readonly recipient: DeliveryRecipient;
  readonly result: OperationResult<DeliveryResult>;
}

const encoder = new TextEncoder();

/** The route a copy takes when no tap changes it: INBOX, no flags, no actions. */
export function defaultRoute(): DeliveryRoute {
  return Object.freeze({ mailbox: 'INBOX', specialUse: null, flags: [], discard: false, spam: false, forward: [], autoreply: true, notes: [] });
}

function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError;
}

/**
 * Resolves an RCPT TO address to a local user and runs `delivery.beforeRecipient`. Verdicts: CLIENTBUG (not an
 * address), NONEXISTENT (no such user), CANNOT (account disabled), or what a tap returned.
 */
export async function resolveRecipient(app: PipelineApp, ctx: HookContext, from: string, address: string): Promise<OperationResult<DeliveryRecipient>> {
  const result = await recipientFor(app, ctx, from, address);
  if (!result.ok) logRecipientRefused(ctx, from, address, result.verdict);
  return result;
}

async function recipientFor(app: PipelineApp, ctx: HookContext, from: string, address: string): Promise<OperationResult<DeliveryRecipient>> {
  let recipient: DeliveryRecipient;
  try {
    let record;
    try {
      record = await resolveAddress(app.storage, address);
    } catch (err) {
      if (isStorageError(err)) throw err;
      return fail(deny('CLIENTBUG', 'Invalid recipient address'));
    }
    if (!record) return fail(deny('NONEXISTENT', 'No such user here'));
    const user = await app.storage.users.get(record.userId);
    if (!user) return fail(deny('NONEXISTENT', 'No such user here'));
    if (user.disabled) return fail(deny('CANNOT', 'Mailbox disabled'));
    recipient = Object.freeze({ address, resolved: record.address, userId: user.id, username: user.username });
  } catch (err) {
    if (isStorageError(err) && err.code !== 'UNAVAILABLE') return fail(deny(err.code, err.message));
    ctx.log.error('recipient lookup failed', { err });
    return fail(tempfail('UNAVAILABLE', 'Recipient lookup failed, try again later'));
  }
  const request: RecipientRequest = Object.freeze({ from, recipient });
  const refused = await runBefore(ctx, app.hooks.delivery.beforeRecipient, [ctx, request]);
  if (refused) return fail(refused);
  return ok(recipient);
}

/** The header block of a message (up to `limit` bytes), parsed. Reads only as far as the blank line. */
export async function readHeaderFields(source: MessageSource, limit: number): Promise<HeaderField[]> {
  let bytes: Uint8Array = new Uint8Array(0);
  let end = -1;
  for await (const chunk of source) {
    bytes = bytes.length === 0 ? chunk : concatBytes([bytes, chunk]);
    end = headerEnd(bytes);
    if (end >= 0 || bytes.length >= limit) break;
  }
  return parseHeaderBlock(bytes.subarray(0, end >= 0 ? end : Math.min(bytes.length, limit)));
}

/** Offset just past the blank line ending the header block, or -1. A message starting with a blank line has none. */
function headerEnd(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (i === 0) return 0;
    if (bytes[i + 1] === 0x0a) return i + 1;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 1;
  }
  return -1;
}

/** Trace headers for one copy: Return-Path (the envelope sender) and Delivered-To (this recipient). */
export function traceHeaders(from: string, recipient: DeliveryRecipient): Uint8Array {
  const clean = (value: string) => value.replace(/[\r\n<>]/g, '');
  return encoder.encode(`Return-Path: <${clean(from)}>\r\nDelivered-To: ${clean(recipient.address)}\r\n`);
}

/** `head` followed by the bytes of `body`, as one stream (nothing buffered). */
export async function* prepend(head: Uint8Array, body: MessageSource): AsyncIterable<Uint8Array> {
  yield head;
  yield* body;
}

function isRoute(value: unknown): value is DeliveryRoute {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.mailbox === 'string' &&
    (r.specialUse === null || typeof r.specialUse === 'string') &&
    Array.isArray(r.flags) &&
    typeof r.discard === 'boolean' &&
    typeof r.spam === 'boolean' &&
    Array.isArray(r.forward) &&
    typeof r.autoreply === 'boolean' &&
    Array.isArray(r.notes)
  );
}

async function targetMailbox(app: PipelineApp, userId: Id, route: DeliveryRoute): Promise<MailboxRecord | null> {
  if (route.specialUse) {
    const special = await app.storage.mailboxes.getBySpecialUse(userId, route.specialUse);
    if (special) return special;
  }
  if (route.mailbox && route.mailbox.toUpperCase() !== 'INBOX') {
    const named = await app.storage.mailboxes.getByPath(userId, route.mailbox);
    if (named) return named;
  }
  return app.storage.mailboxes.getByPath(userId, 'INBOX');
}

function duplicateKey(userId: Id, messageId: string): string {
  return `delivery:dup:${userId}:${messageId.trim().toLowerCase()}`;
}

/** Delivers one message to each recipient; one outcome per recipient, in order. Never throws. */
export async function deliverMessage(app: PipelineApp, ctx: HookContext, input: DeliverInput): Promise<DeliveryOutcome[]> {
  const outcomes: DeliveryOutcome[] = [];
  let headers: HeaderField[] = [];
  let headerFailure: OperationResult<DeliveryResult> | null = null;
  try {
    headers = await readHeaderFields(input.message.open(), app.config.limits.maxHeaderBytes);
  } catch (err) {
    ctx.log.error('could not read the message headers', { err });
    headerFailure = fail(tempfail('SERVERBUG', 'Could not read the message, try again later'));
  }
  const messageId = getHeader(headers, 'message-id');
  const internalDate = input.internalDate ?? Date.now();
  // One copy per resolved user per transaction: `Alice@EXAMPLE.com`, `alice@example.com` and `alice+tag@…` given
  // twice (or 1,000 times) store once; every repeat gets the first copy's outcome (a duplicate when it was stored).
  const firstForUser = new Map<Id, OperationResult<DeliveryResult>>();
  // delivery.afterDeliver of a copy runs once its outcome was reported (the LMTP reply goes out first)
  const afterwards: Array<() => Promise<void>> = [];
  const parse = new SharedParse(app, input.message);
  try {
    await deliverEach(app, ctx, input, { headers, headerFailure, messageId, internalDate, firstForUser, afterwards, parse, outcomes });
  } finally {
    await parse.release(ctx.log);
  }
  return outcomes;
}

/** One parse of the delivered message, shared by its copies; the staged blobs no copy committed are discarded at the end. */
class SharedParse {
  readonly #app: PipelineApp;
  readonly #source: DeliverySource;
  #parse: Promise<IngestedMessage> | null = null;
  #committed = false;

  constructor(app: PipelineApp, source: DeliverySource) {
    this.#app = app;
    this.#source = source;
  }

  /** The parse for the copy that starts with `head` (null when it cannot be made from the shared one). */
  for(head: Uint8Array): PreIngested {
    return {
      message: async () => {
        this.#parse ??= this.#app.ingest(this.#source.open());
        return withHeaderPrefix(await this.#parse, head, this.#app.config.limits.maxHeaderBytes);
      },
      committed: () => {
        this.#committed = true; // the first commit consumed the staged blobs; later ones took references
      },
    };
  }

  async release(log: Logger): Promise<void> {
    if (!this.#parse || this.#committed) return;
    let parsed: IngestedMessage;
    try {
      parsed = await this.#parse;
    } catch {
      return; // a failed ingest discards what it staged
    }
    if (parsed.blobs.length === 0) return;
    await this.#app.storage.blobs.discard(parsed.blobs).catch((err: unknown) => {
      log.warn('could not discard staged blobs; blobs.collect() will', { err, blobs: parsed.blobs.length });
    });
  }
}

interface DeliveryState {
  readonly headers: HeaderField[];
  readonly headerFailure: OperationResult<DeliveryResult> | null;
  readonly messageId: string | null;
  readonly internalDate: number;
  readonly firstForUser: Map<Id, OperationResult<DeliveryResult>>;
  readonly afterwards: Array<() => Promise<void>>;
  readonly parse: SharedParse;
  readonly outcomes: DeliveryOutcome[];
}

async function deliverEach(app: PipelineApp, ctx: HookContext, input: DeliverInput, state: DeliveryState): Promise<void> {
  const { headers, headerFailure, messageId, internalDate, firstForUser, afterwards, parse, outcomes } = state;
  for (const [index, recipient] of input.recipients.entries()) {
    const rctx = createContext(ctx.session, { recipient: recipient.address });
    const earlier = firstForUser.get(recipient.userId);
    const result = earlier
      ? repeatOutcome(earlier)
      : (headerFailure ?? (await deliverOne(app, rctx, input, recipient, headers, messageId, internalDate, afterwards, parse)));
    if (!earlier) firstForUser.set(recipient.userId, result);
    logDelivery(rctx, input.from, messageId, result);
    const outcome: DeliveryOutcome = Object.freeze({ recipient, result });
    outcomes.push(outcome);
    if (app.metrics) {
      if (!result.ok) app.metrics.delivery(result.verdict.action === 'tempfail' ? 'deferred' : 'rejected', result.verdict.code);
      else app.metrics.delivery(result.value.duplicate ? 'duplicate' : result.value.stored ? 'stored' : 'discarded', null);
    }
    if (input.onOutcome) {
      try {
        await input.onOutcome(index, outcome);
      } catch (err) {
        ctx.log.warn('delivery outcome callback failed', { err });
      }
    }
    for (const after of afterwards.splice(0)) await after();
  }
}

/** The outcome of a repeated recipient (same user again in one transaction): the first one's, not stored again. */
function repeatOutcome(first: OperationResult<DeliveryResult>): OperationResult<DeliveryResult> {
  if (!first.ok || (!first.value.stored && !first.value.duplicate)) return first; // refused, deferred or discarded alike
  return ok(Object.freeze({ ...first.value, stored: null, duplicate: true }));
}

async function deliverOne(
  app: PipelineApp,
  ctx: HookContext,
  input: DeliverInput,
  recipient: DeliveryRecipient,
  headers: HeaderField[],
  messageId: string | null,
  internalDate: number,
  afterwards: Array<() => Promise<void>>,
  parse: SharedParse,
): Promise<OperationResult<DeliveryResult>> {
  const hooks = app.hooks.delivery;
  const request: DeliveryRequest = Object.freeze({
    from: input.from,
    recipient,
    headers,
    size: input.message.size,
    messageId,
    open: () => input.message.open(),
  });
  const refused = await runBefore(ctx, hooks.beforeDeliver, [ctx, request]);
  if (refused) return fail(refused);

  // Duplicate suppression: claim the Message-ID for this user; a failed store gives the claim back. The claim (a round
  // trip to the primary when there are workers) runs while the route and the target mailbox are worked out and the
  // message is parsed; its answer is awaited before anything is stored (and before a refusal is reported), so a
  // duplicate is reported as before and never stored.
  const windowMs = app.config.delivery.duplicateWindowSeconds * 1000;
  const key = windowMs > 0 && messageId ? duplicateKey(recipient.userId, messageId) : null;
  const claim: Promise<boolean | null> = key
    ? app.storage.ephemeral.setIfAbsent(key, windowMs).catch((err: unknown) => {
        ctx.log.warn('duplicate check failed; delivering anyway', { err });
        return null;
      })
    : Promise.resolve(null);
  const duplicate = async (): Promise<OperationResult<DeliveryResult>> => {
    ctx.log.info('duplicate delivery suppressed', { messageId });
    const result: DeliveryResult = Object.freeze({ route: defaultRoute(), mailboxId: null, stored: null, duplicate: true });
    afterwards.push(() => runAfter(ctx, hooks.afterDeliver, [ctx, request, result]));
    return ok(result);
  };
  /** A refusal or failure of this copy: a duplicate's answer when the claim says so, else the claim given back. */
  const refuse = async (failure: OperationResult<DeliveryResult>): Promise<OperationResult<DeliveryResult>> => {
    const claimed = await claim;
    if (claimed === false) return duplicate();
    if (claimed && key) await app.storage.ephemeral.del(key).catch(() => {});
    return failure;
  };
  const target = await routeAndMailbox(app, ctx, request, recipient);
  if (!target.ok) return refuse(target);
  const { route, mailbox } = target.value;

  let mailboxId: Id | null = null;
  let mailboxPath: string | null = null;
  let stored: AppendResult | null = null;
  if (mailbox) {
    const head = traceHeaders(input.from, recipient);
    const result = await storeMessageWhen(
      app,
      ctx,
      {
        userId: recipient.userId,
        mailboxId: mailbox.id,
        flags: [...route.flags],
        internalDate,
        source: prepend(head, input.message.open()),
        declaredSize: head.length + input.message.size,
      },
      claim.then((claimed) => claimed !== false),
      parse.for(head),
    );
    if (result === null) return duplicate();
    if (!result.ok) return refuse(result);
    mailboxId = mailbox.id;
    mailboxPath = mailbox.path;
    stored = result.value;
  } else if ((await claim) === false) {
    return duplicate();
  }
  const result: DeliveryResult = Object.freeze({ route, mailboxId, mailboxPath, stored, duplicate: false });
  afterwards.push(() => runAfter(ctx, hooks.afterDeliver, [ctx, request, result]));
  return ok(result);
}

/** The recipient's route (the `delivery.route` taps) and, unless it discards, its target mailbox. */
async function routeAndMailbox(
  app: PipelineApp,
  ctx: HookContext,
  request: DeliveryRequest,
  recipient: DeliveryRecipient,
): Promise<OperationResult<{ route: DeliveryRoute; mailbox: MailboxRecord | null }>> {
  const routed = await runHook<unknown>(ctx, app.hooks.delivery.route, [defaultRoute(), ctx, request]);
  if (!routed.ok) return routed;
  if (!isRoute(routed.value)) {
    ctx.log.error('delivery.route returned something that is not a DeliveryRoute', { returned: typeof routed.value });
    return fail(tempfail('SERVERBUG', 'Internal server error, try again later'));
  }
  const route = routed.value;
  if (route.discard) return ok({ route, mailbox: null });
  let mailbox: MailboxRecord | null;
  try {
    mailbox = await targetMailbox(app, recipient.userId, route);
  } catch (err) {
    ctx.log.error('mailbox lookup failed', { err });
    return fail(tempfail('UNAVAILABLE', 'Mailbox lookup failed, try again later'));
  }
  if (!mailbox) return fail(deny('NONEXISTENT', 'The recipient has no INBOX'));
  return ok({ route, mailbox });
}
