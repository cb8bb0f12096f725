/**
 * Named stages for tapping hooks. A stage is a number passed as tapable's `stage` option: lower runs earlier.
 * Taps at the same stage run in the order their plugins appear in `config.plugins` (config order only breaks
 * ties). Pick the stage by what the tap means, not by where you want it relative to another plugin.
 */

/** Cheap checks that must run before any business rule: rate limits, blocklists, disabled accounts. */
export const GUARD = -300;

/** Business rules that may refuse the operation with a verdict: quota, size and recipient policy. */
export const POLICY = -200;

/** The stage a tap gets when it names none. For plugins that have no reason to run earlier or later. */
export const DEFAULT = 0;

/** Rewriting: header insertion, message rewriting in `message.prepare`, capability list edits. */
export const TRANSFORM = 100;

/**
 * The commit: the storage plugin taps the `do` hooks (`message.store`, `mailbox.create`, ...) here, so every
 * rule above has had its say before anything is written. A plugin that commits elsewhere (a submission queue)
 * uses it too.
 */
export const COMMIT = 1000;

/**
 * Watching only: logging, metrics, notifications. Returns nothing. On a bail hook a tap at this stage runs only
 * when no earlier tap answered, so observe outcomes through the `after*` hooks.
 */
export const OBSERVE = 2000;

export const STAGES = Object.freeze({ GUARD, POLICY, DEFAULT, TRANSFORM, COMMIT, OBSERVE });
export type StageName = keyof typeof STAGES;

/** "POLICY" for -200, "POLICY+5" for -195, "COMMIT-1" for 999; for print-hooks and logs. */
export function stageName(stage: number | undefined): string {
  const value = stage ?? DEFAULT;
  const entries = Object.entries(STAGES) as Array<[StageName, number]>;
  const exact = entries.find(([, v]) => v === value);
  if (exact) return exact[0];
  let nearest = entries[0]!;
  for (const entry of entries) if (Math.abs(entry[1] - value) < Math.abs(nearest[1] - value)) nearest = entry;
  const diff = value - nearest[1];
  return `${nearest[0]}${diff > 0 ? '+' : ''}${diff}`;
}
