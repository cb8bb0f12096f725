/**
 * Spam routing: a message whose spam header (config `delivery.spamHeader`, default X-Spam-Status) says spam is
 * delivered to the user's Junk mailbox and marked `spam` on its route, so forwarding and autoreply stay quiet.
 * Understood values: SpamAssassin's "Yes, score=…", rspamd actions ("add header", "rewrite subject", "reject"),
 * and "yes"/"true"/"spam". With `minScore` set, a "score=N" at or above it counts as spam as well.
 *
 * Per-user level (`spamLevel` in the user's delivery settings, storage/delivery-settings.ts), as WildDuck has it:
 * 0 = every message is spam, 100 = nothing is, in between the header counts as spam when its score (see
 * `spamScore`) is at least the level. Users without a level get the rule above. A user's filter with a `spam`
 * action (plugins/filters.ts, a later stage) overrules either way.
 *
 * Loaded by default (step 3 of the delivery pipeline, issue 4): without the header and without a per-user level
 * it changes nothing. `['spam-routing', false]` in config.plugins switches it off; `['spam-routing', { minScore }]`
 * replaces the default instance.
 */
import { z } from 'zod';
import { definePlugin } from '../hooks/host.ts';
import type { PluginApi } from '../hooks/host.ts';
import { POLICY } from '../hooks/stages.ts';
import { deliverySettingsFor } from '../storage/delivery-settings.ts';

export const SPAM_ROUTING_PLUGIN = 'spam-routing';

const SPAM_WORDS = /^(yes|true|spam|add header|rewrite subject|reject)\b/i;

/** True when a spam header value says spam (or its score reaches `minScore`). */
export function isSpamValue(value: string, minScore: number | null): boolean {
  if (SPAM_WORDS.test(value.trim())) return true;
  if (minScore === null) return false;
  const score = /\bscore=(-?\d+(?:\.\d+)?)/i.exec(value);
  return score !== null && Number(score[1]) >= minScore;
}

/**
 * A header value on WildDuck's 0–100 scale: rspamd "reject" 75; "rewrite subject", "soft reject", "greylist" and
 * a plain spam verdict (SpamAssassin "Yes") 50; "add header" 25; anything else 0.
 */
export function spamScore(value: string): number {
  const v = value.trim().toLowerCase();
  if (/^reject\b/.test(v)) return 75;
  if (/^(rewrite subject|soft reject|greylist|yes|true|spam)\b/.test(v)) return 50;
  if (/^add header\b/.test(v)) return 25;
  return 0;
}

/** The verdict for one message (`value`: the spam header, if any): the user's level when set, the server-wide rule otherwise. */
export function isSpamFor(value: string | undefined, level: number | null, minScore: number | null): boolean {
  if (level === null) return value !== undefined && isSpamValue(value, minScore);
  if (level === 0) return true;
  if (level === 100 || value === undefined) return false;
  // a score=N at or above minScore counts like a plain spam verdict
  const score = spamScore(value) || (isSpamValue(value, minScore) ? 50 : 0);
  return score >= level;
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
          const { spamLevel } = await deliverySettingsFor(api.storage.documents, request);
          if (!isSpamFor(value, spamLevel, options.minScore)) return route;
          return { ...route, specialUse: '\\Junk', spam: true, autoreply: false, forward: [], notes: [...route.notes, 'spam-header'] };
        });
      },
    };
  },
});

/** The instance the host loads by default (protocols/app.ts). */
export function createSpamRoutingPlugin() {
  return spamRoutingPlugin.create({ minScore: null });
}
