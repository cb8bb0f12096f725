/**
 * Floors point one way: protocols -> hooks -> storage. Nothing under storage/ imports a protocol module, so a
 * storage backend (and the search evaluator) can be used without any front end.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('import floors', () => {
  it('storage/ never imports from protocols/', () => {
    const offenders: string[] = [];
    for (const file of sources(join(root, 'storage'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/\bfrom\s+'([^']+)'/g)) {
        if (/(^|\/)protocols\//.test(match[1]!)) offenders.push(`${relative(root, file)}: ${match[1]}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
