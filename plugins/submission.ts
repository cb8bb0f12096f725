/**
 * Submission: hands a user's outgoing message (`submitMessage`: HTTP submit, a future SMTP submission) to the
 * outbound relay in `delivery.relay`. Loaded by default (protocols/app.ts); `['submission', { ... }]` sets options,
 * `['submission', false]` switches it off for a queue plugin of your own.
 *
 *   submission.beforeSubmit   GUARD   per-user daily recipient limit (ephemeral counter, 24 h from the first
 *                                     send): tempfail LIMIT
 *                             POLICY  the envelope sender must be one of the user's addresses: deny NOPERM
 *   submission.submit         COMMIT  sends through the relay and answers only once the relay accepted the
 *                                     message (`250` after DATA) — no background queue, so a success is durable
 *                                     at the relay and a failure is reported, never lost. Bcc header fields are
 *                                     removed from what is sent (the Sent copy keeps them). No relay configured:
 *                                     tempfail UNAVAILABLE "no outbound relay configured".
 *
 * Relay outcomes: accepted → `{ id }` (the relay's "queued as" id when it names one, else an id of ours, logged
 * with the relay's answer); a 5xx refusal → deny RELAYREJECTED with the relay's reply; anything else (4xx,
 * connection, timeout) → tempfail UNAVAILABLE. Recipients the relay refused while others were accepted are
 * returned in `rejected`: the message went out, so the submission succeeds.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { COMMIT, GUARD, POLICY } from '../hooks/stages.ts';
import { deny, tempfail } from '../hooks/verdict.ts';
import type { Verdict } from '../hooks/verdict.ts';
import type { SubmitResult } from '../hooks/types.ts';
import { ownsAddress } from '../storage/addresses.ts';
import { concatBytes } from '../storage/bytes.ts';
import { createRelay } from './relay.ts';
import type { Relay } from './relay.ts';

export const SUBMISSION_PLUGIN = 'submission';
const DAY_MS = 24 * 3600 * 1000;

const optionsSchema = z
  .object({
    maxRecipientsPerDay: z.number().int().nonnegative().describe('Recipients a user may send to per 24 hours; 0 = no limit.'),
    checkSender: z.boolean().describe('Refuse envelope senders that are not one of the user\'s addresses.'),
  })
  .strict();
export type SubmissionOptions = z.output<typeof optionsSchema>;

const DEFAULTS: SubmissionOptions = { maxRecipientsPerDay: 2000, checkSender: true };

export function sentCounterKey(userId: string): string {
  return `submission:day:${userId}`;
}

/** The message without its Bcc header fields (folded continuation lines included); the same bytes without one. */
export function withoutBcc(bytes: Uint8Array): Uint8Array {
  // header block: up to the first empty line
  let end = bytes.length;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0x0a && (bytes[i + 1] === 0x0a || (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a))) {
      end = i + 1;
      break;
    }
  }
  const keep: Array<[number, number]> = [];
  let dropping = false;
  let removed = false;
  for (let start = 0; start < end; ) {
    let stop = bytes.indexOf(0x0a, start);
    stop = stop < 0 || stop >= end ? end : stop + 1;
    const first = bytes[start];
    const continuation = first === 0x20 || first === 0x09;
    if (!continuation) {
      const head = String.fromCharCode(...bytes.subarray(start, Math.min(start + 4, stop))).toLowerCase();
      dropping = head === 'bcc:';
    }
    if (dropping) removed = true;
    else keep.push([start, stop]);
    start = stop;
  }
  if (!removed) return bytes;
  return concatBytes([...keep.map(([a, b]) => bytes.subarray(a, b)), bytes.subarray(end)]);
}

/** The queue id in a relay's reply ("250 2.0.0 Ok: queued as 4Xyz"), or null. */
export function queueIdOf(response: string): string | null {
  return /queued as\s+<?([A-Za-z0-9._@-]+)>?/i.exec(response)?.[1] ?? null;
}

function smtpCode(err: unknown): number | null {
  const code = typeof err === 'object' && err !== null ? (err as { responseCode?: unknown }).responseCode : undefined;
  return typeof code === 'number' ? code : null;
}

function oneLine(value: unknown): string {
  return String(value ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
}

export class SubmissionPlugin {
  readonly name = SUBMISSION_PLUGIN;
  private readonly options: SubmissionOptions;
  private relay: Relay | null = null;

  constructor(options: SubmissionOptions) {
    this.options = options;
  }

  apply(api: PluginApi): void {
    const { maxRecipientsPerDay, checkSender } = this.options;
    this.relay = createRelay(api.config.delivery.relay);
    const { ephemeral, users } = api.storage;

    if (maxRecipientsPerDay > 0) {
      api.hooks.submission.beforeSubmit.tapPromise({ stage: GUARD, label: 'daily limit' }, async (_ctx, request) => {
        const used = await ephemeral.get(sentCounterKey(request.userId));
        if (used + request.to.length > maxRecipientsPerDay) return tempfail('LIMIT', `Daily sending limit reached (${maxRecipientsPerDay} recipients per 24 hours)`);
        return undefined;
      });
    }

    if (checkSender) {
      api.hooks.submission.beforeSubmit.tapPromise({ stage: POLICY, label: 'sender address' }, async (_ctx, request) => {
        if (await ownsAddress(users, request.userId, request.from)) return undefined;
        return deny('NOPERM', `The sender address ${oneLine(request.from)} is not one of your addresses`);
      });
    }

    api.hooks.submission.submit.tapPromise({ stage: COMMIT, label: 'relay' }, async (ctx, input): Promise<SubmitResult | Verdict> => {
      const relay = this.relay;
      if (!relay) return tempfail('UNAVAILABLE', 'no outbound relay configured');
      const log = ctx.log.child({ plugin: SUBMISSION_PLUGIN, from: input.from, to: [...input.to] });
      try {
        const receipt = await relay.deliver({ from: input.from, to: input.to, raw: withoutBcc(input.source) });
        const id = queueIdOf(receipt.response) ?? randomBytes(9).toString('hex');
        if (maxRecipientsPerDay > 0) await ephemeral.incr(sentCounterKey(input.userId), receipt.accepted.length || input.to.length, DAY_MS);
        log.info('submitted through the relay', { queueId: id, response: receipt.response, rejected: receipt.rejected });
        return receipt.rejected.length > 0 ? { id, rejected: receipt.rejected } : { id };
      } catch (err) {
        const code = smtpCode(err);
        const response = oneLine((err as { response?: unknown }).response ?? '');
        if (code !== null && code >= 500) {
          log.warn('relay refused the submission', { response });
          return deny('RELAYREJECTED', `The outbound relay refused the message: ${response || code}`);
        }
        log.warn('relay send failed', { err, response });
        return tempfail('UNAVAILABLE', 'The outbound relay is not available, try again later');
      }
    });
  }

  close(): void {
    this.relay?.close();
  }
}

export const submissionPlugin = definePlugin<SubmissionOptions>({
  description: 'Sends submitted messages through delivery.relay (after the relay accepted them); daily limit, sender check',
  optionsSchema,
  defaults: DEFAULTS,
  create: (options) => new SubmissionPlugin(options),
});

/** The plugin with its defaults, as protocols/app.ts loads it when config doesn't name it. */
export function createSubmissionPlugin(): SubmissionPlugin {
  return new SubmissionPlugin(DEFAULTS);
}
