/**
 * Spam routing: a message whose spam header (config `delivery.spamHeader`, default X-Spam-Status) says spam is
 * delivered to the user's Junk mailbox and marked `spam` on its route, so forwarding and autoreply stay quiet.
 * Understood values: SpamAssassin's "Yes, score=…", rspamd actions ("add header", "rewrite subject", "reject"),
 * and "yes"/"true"/"spam". With `minScore` set, a "score=N" at or above it counts as spam as well.
 *
 * Per-user levels need per-user delivery settings in storage, which this build does not have yet.
 */
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { POLICY } from '../hooks/stages.ts';

export const SPAM_ROUTING_PLUGIN = 'spam-routing';

const SPAM_WORDS = /^(yes|true|spam|add header|rewrite subject|reject)\b/i;

/** True when a spam header value says spam (or its score reaches `minScore`). */
export function isSpamValue(value: string, minScore: number | null): boolean {
  if (SPAM_WORDS.test(value.trim())) return true;
  if (minScore === null) return false;
  const score = /\bscore=(-?\d+(?:\.\d+)?)/i.exec(value);
  return score !== null && Number(score[1]) >= minScore;
}

export const spamRoutingPlugin = definePlugin({
  description: 'Delivers messages the MTA marked as spam to Junk',
  optionsSchema: z.object({ minScore: z.number().nullable() }).strict(),
  defaults: { minScore: null },
  create(options) {
    return {
      name: SPAM_ROUTING_PLUGIN,
      apply(api: PluginApi) {
        const header = api.config.delivery.spamHeader.toLowerCase();
        api.hooks.delivery.route.tapPromise({ stage: POLICY }, async (route, _ctx, request) => {
          const value = request.headers.find((h) => h.key === header)?.value;
          if (value === undefined || !isSpamValue(value, options.minScore)) return route;
          return { ...route, specialUse: '\\Junk', spam: true, autoreply: false, forward: [], notes: [...route.notes, 'spam-header'] };
        });
      },
    };
  },
});
