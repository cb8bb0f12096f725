/**
 * Autoreply (vacation), always loaded; inert until `delivery.relay.host` is set and a user turns it on
 * (kind 'autoreply', storage/delivery-settings.ts).
 *
 * `delivery.afterDeliver` (after the commit): while the user's autoreply is on and within its start/end dates,
 * the envelope sender gets one reply per `delivery.autoreplyIntervalSeconds` (remembered per user and sender in
 * the ephemeral store). Never replied to (RFC 3834): the null sender, spam, duplicates, routes with autoreply off,
 * `Auto-Submitted` other than `no`, `Precedence: bulk|list|junk`, any `List-*` header, `X-Auto-Response-Suppress`
 * asking for it, and mailer-daemon / postmaster / noreply senders. The reply goes from the null sender `<>` and
 * carries `Auto-Submitted: auto-replied`, `In-Reply-To` and `References`. A failed send is logged only.
 */
import type { Plugin, PluginApi } from '../hooks/host.ts';
import type { Logger } from '../hooks/log.ts';
import type { DeliveryRequest } from '../hooks/types.ts';
import { autoreplyActive, getAutoreply } from '../storage/delivery-settings.ts';
import type { AutoreplyData } from '../storage/delivery-settings.ts';
import { decodeWords, getHeader } from '../storage/mime/headers.ts';
import type { HeaderField } from '../storage/mime/headers.ts';
import { messageIds } from '../storage/mime/envelope.ts';
import { createRelay, localPart, OutboundQueue } from './relay.ts';
import type { OutboundMail, Relay } from './relay.ts';

export const AUTOREPLY_PLUGIN = 'autoreply';

const ROBOT_SENDER = /mailer-daemon|^postmaster$|no-?reply|do-?not-?reply/;

/** Why a message must not get an autoreply, or null when it may. */
export function suppressionReason(sender: string, headers: readonly HeaderField[]): string | null {
  if (!sender) return 'null sender';
  if (ROBOT_SENDER.test(localPart(sender))) return 'robot sender';
  for (const { key, value } of headers) {
    const v = value.trim().toLowerCase();
    if (key === 'auto-submitted' && v.split(';')[0]!.trim() !== 'no') return 'auto-submitted';
    if (key === 'precedence' && /^(bulk|list|junk)\b/.test(v)) return 'precedence';
    if (key.startsWith('list-')) return 'mailing list';
    if (key === 'x-auto-response-suppress' && /\b(all|oof|autoreply)\b/.test(v)) return 'x-auto-response-suppress';
  }
  return null;
}

export function autoreplyKey(userId: string, sender: string): string {
  return `autoreply:${userId}:${sender.trim().toLowerCase()}`;
}

/** The reply to `request` (from the null sender, to the envelope sender). */
export function buildReply(request: DeliveryRequest, autoreply: AutoreplyData, fromName: string | null): OutboundMail {
  const original = decodeWords(getHeader([...request.headers], 'subject') ?? '').trim();
  const subject = autoreply.subject || `Auto: ${original}`.trim();
  const references = messageIds(getHeader([...request.headers], 'references'));
  const messageId = request.messageId?.trim() || null;
  if (messageId && !references.includes(messageId)) references.push(messageId);
  const address = request.recipient.resolved;
  return {
    from: '',
    to: [request.from],
    compose: {
      from: fromName ? `"${fromName.replace(/["\\\r\n]/g, '')}" <${address}>` : address,
      to: request.from,
      subject,
      text: autoreply.text || undefined,
      html: autoreply.html || undefined,
      inReplyTo: messageId ?? undefined,
      references: references.length ? references : undefined,
      headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' },
    },
  };
}

export class AutoreplyPlugin implements Plugin {
  readonly name = AUTOREPLY_PLUGIN;
  private relay: Relay | null = null;
  private queue: OutboundQueue | null = null;

  apply(api: PluginApi): void {
    this.relay = createRelay(api.config.delivery.relay);
    const queue = (this.queue = new OutboundQueue(api.log));
    const intervalMs = api.config.delivery.autoreplyIntervalSeconds * 1000;
    let warned = false;

    api.hooks.delivery.afterDeliver.tapPromise({}, async (ctx, request, result) => {
      if (result.duplicate || result.route.spam || !result.route.autoreply) return;
      const autoreply = await getAutoreply(api.storage.documents, request.recipient.userId);
      if (!autoreplyActive(autoreply, Date.now())) return;
      const log: Logger = ctx.log.child({ plugin: AUTOREPLY_PLUGIN, sender: request.from });
      const reason = suppressionReason(request.from, request.headers);
      if (reason) return log.debug('no autoreply', { reason });
      const relay = this.relay;
      if (!relay) {
        if (!warned) api.log.info('autoreply skipped: no delivery.relay.host configured');
        warned = true;
        return;
      }
      if (!(await api.storage.ephemeral.setIfAbsent(autoreplyKey(request.recipient.userId, request.from), intervalMs))) {
        return log.debug('no autoreply: already replied to this sender within the interval');
      }
      const user = await api.storage.users.get(request.recipient.userId);
      const reply = buildReply(request, autoreply, user?.name || null);
      queue.run(() => relay.send(reply), { kind: 'autoreply', user: request.recipient.username, to: request.from });
    });
  }

  /** Resolves when every reply started so far has been sent (or failed). */
  settled(): Promise<void> {
    return this.queue?.settled() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await this.queue?.drain(5000);
    this.relay?.close();
  }
}

export function createAutoreplyPlugin(): AutoreplyPlugin {
  return new AutoreplyPlugin();
}
