/**
 * `wildduck print-hooks`: every hook with its taps in run order, so an admin can see which plugin runs where.
 *
 *   message.beforeStore                 bail
 *     1. quota                          POLICY (-200)     promise
 *   message.store                       bail
 *     1. storage                        COMMIT (1000)     promise
 */
import { stageName } from './stages.ts';
import { catalogue } from './tree.ts';
import type { AnyHook, Hooks } from './tree.ts';
import type { TapMeta } from './interceptor.ts';

type ShownTap = { name: string; stage?: number; type: string } & TapMeta;

function tapLines(hook: AnyHook): string[] {
  const taps = hook.taps as unknown as ShownTap[];
  if (taps.length === 0) return ['    (no taps)'];
  return taps.map((tap, i) => {
    const who = `${i + 1}. ${tap.plugin ?? tap.name}${tap.label ? ` (${tap.label})` : ''}`;
    const stage = `${stageName(tap.stage)} (${tap.stage ?? 0})`;
    return `    ${who.padEnd(34)}${stage.padEnd(18)}${tap.kind ?? tap.type}`;
  });
}

/** The hook listing as text (ends with a newline). */
export function printHooks(app: { readonly hooks: Hooks }): string {
  const lines: string[] = [];
  for (const entry of catalogue(app.hooks)) {
    if (entry.type === 'hook') {
      lines.push(`${entry.name.padEnd(38)}${entry.kind}`);
      lines.push(...tapLines(entry.hook));
      continue;
    }
    const keys = [...entry.hooks.entries()].filter(([, hook]) => hook.taps.length > 0).sort(([a], [b]) => a.localeCompare(b));
    lines.push(`${`${entry.name}.for(key)`.padEnd(38)}${entry.kind} map${keys.length ? '' : ', no taps'}`);
    for (const [key, hook] of keys) {
      lines.push(`  ${`${entry.name}[${key}]`.padEnd(36)}${entry.kind}`);
      lines.push(...tapLines(hook));
    }
  }
  return lines.join('\n') + '\n';
}
