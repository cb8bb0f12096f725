/** The project's TypeScript sources, for the static checks over imports and calls (test/import-floors, write-floors). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root. */
export const projectRoot = join(import.meta.dirname, '..', '..');

/** Every `.ts` file below `dir`, recursively. */
export function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}
