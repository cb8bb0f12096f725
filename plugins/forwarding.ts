/**
 * Forwarding, always loaded; inert until `delivery.relay.host` is set.
 *
 * - `delivery.route` at TRANSFORM (after filters): adds the user's own forward targets (delivery settings,
 *   storage/delivery-settings.ts) unless the message is spam or a filter deleted it, as WildDuck does. Filter
 *   `targets` are already on the route.
 * - `delivery.afterDeliver` (after the commit): sends one copy to every target on the route through the relay,
 *   enveloped from the original sender, with `Received`, `Delivered-To` (this recipient) and
 *   `X-Forwarded-For` / `X-Forwarded-To` on top. Nothing is sent for spam or duplicates; a message that already
 *   crossed `delivery.maxHops` hops (Received + Delivered-To headers) or already carries this recipient's
 *   Delivered-To is a loop and is not forwarded; each user may forward `delivery.forwardLimitPerDay` copies per
 *   24 hours (counted per target in the ephemeral store). A failed send is logged; the delivery stands.
 */
import { hostname } from 'node:os';
import type { Plugin, PluginApi } from '../hooks/host.ts';
import { TRANSFORM } from '../hooks/stages.ts';
import type { Logger } from '../hooks/log.ts';
import type { HeaderField } from '../storage/mime/headers.ts';
import type { DeliveryRecipient } from '../hooks/types.ts';
import { collectBytes } from '../storage/bytes.ts';
import { deliverySettingsFor } from '../storage/delivery-settings.ts';
import { prepend } from '../hooks/pipeline/deliver.ts';
import { createRelay, OutboundQueue } from './relay.ts';
import type { Relay } from './relay.ts';

export const FORWARDING_PLUGIN = 'forwarding';
const DAY_MS = 24 * 3600 * 1000;

/** Hops a message has made: its Received and Delivered-To headers. */
export function hopCount(headers: readonly HeaderField[]): number {
  return headers.filter((h) => h.key === 'received' || h.key === 'delivered-to').length;
}

function bareAddress(value: string): string {
  return (/<([^<>]*)>/.exec(value)?.[1] ?? value).trim().toLowerCase();
}

/** True when the message already went through delivery to this recipient (its Delivered-To is on it). */
export function deliveredBefore(headers: readonly HeaderField[], recipient: DeliveryRecipient): boolean {
  const own = [recipient.address, recipient.resolved].map((a) => a.toLowerCase());
  return headers.some((h) => h.key === 'delivered-to' && own.includes(bareAddress(h.value)));
}

/** RFC 5322 date with a numeric zone. */
export function mailDate(time: number): string {
  return new Date(time).toUTCString().replace(/GMT$/, '+0000');
}

/** The trace block put on top of a forwarded copy. */
export function forwardHeaders(recipient: DeliveryRecipient, targets: readonly string[], host: string, now: number): string {
  const clean = (v: string) => v.replace(/[\r\n]/g, '');
  return (
    `Received: by ${clean(host)} with LMTP (forwarded) for <${clean(recipient.resolved)}>; ${mailDate(now)}\r\n` +
    `Delivered-To: ${clean(recipient.resolved)}\r\n` +
    `X-Forwarded-For: ${clean(recipient.resolved)} ${targets.map(clean).join(', ')}\r\n` +
    `X-Forwarded-To: ${targets.map(clean).join(', ')}\r\n`
  );
}

export function forwardCounterKey(userId: string): string {
  return `forward:day:${userId}`;
}

export class ForwardingPlugin implements Plugin {
  readonly name = FORWARDING_PLUGIN;
  private relay: Relay | null = null;
  private queue: OutboundQueue | null = null;

  apply(api: PluginApi): void {
    const { delivery } = api.config;
    this.relay = createRelay(delivery.relay);
    const queue = (this.queue = new OutboundQueue(api.log));
    const host = hostname();
    const encoder = new TextEncoder();
    let warned = false;

    api.hooks.delivery.route.tapPromise({ stage: TRANSFORM }, async (route, _ctx, request) => {
      if (route.spam || route.discard) return route;
      const { forward } = await deliverySettingsFor(api.storage.documents, request);
      const extra = forward.filter((target) => !route.forward.includes(target));
      return extra.length ? { ...route, forward: [...route.forward, ...extra] } : route;
    });

    api.hooks.delivery.afterDeliver.tapPromise({}, async (ctx, request, result) => {
      const targets = result.route.forward;
      if (result.duplicate || targets.length === 0) return;
      const log: Logger = ctx.log.child({ plugin: FORWARDING_PLUGIN, targets: [...targets] });
      if (result.route.spam) return log.info('not forwarded: spam');
      const hops = hopCount(request.headers);
      if (hops >= delivery.maxHops) return log.warn('not forwarded: too many hops, possible mail loop', { hops, maxHops: delivery.maxHops });
      if (deliveredBefore(request.headers, request.recipient)) return log.warn('not forwarded: already delivered to this recipient once (mail loop)');
      const relay = this.relay;
      if (!relay) {
        if (!warned) api.log.info('forwarding skipped: no delivery.relay.host configured');
        warned = true;
        return;
      }
      const count = await api.storage.ephemeral.incr(forwardCounterKey(request.recipient.userId), targets.length, DAY_MS);
      if (count > delivery.forwardLimitPerDay) return log.warn('not forwarded: daily forwarding limit reached', { limit: delivery.forwardLimitPerDay });
      const head = encoder.encode(forwardHeaders(request.recipient, targets, host, Date.now()));
      const raw = await collectBytes(prepend(head, request.open()));
      queue.run(() => relay.send({ from: request.from, to: targets, raw }), { kind: 'forward', user: request.recipient.username, targets: [...targets] });
    });
  }

  /** Resolves when every forward started so far has been sent (or failed). */
  settled(): Promise<void> {
    return this.queue?.settled() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await this.queue?.drain(5000);
    this.relay?.close();
  }
}

export function createForwardingPlugin(): ForwardingPlugin {
  return new ForwardingPlugin();
}
