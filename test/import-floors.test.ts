/**
 * Floors point one way: protocols -> hooks -> storage, with plugins beside hooks. Read from the imports of every
 * source file (static, re-exports and dynamic `import()`), each resolved to the top-level folder it lands in:
 * - storage/ imports none of protocols/, hooks/, plugins/ (a backend and the search evaluator work without any
 *   front end or plugin host);
 * - hooks/ imports neither protocols/ nor plugins/ (the composition root that loads the plugins is protocols/app.ts);
 * - plugins/ never imports protocols/ (a plugin sees the server through hooks/ only).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { projectRoot, sources } from './helpers/source-files.ts';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = projectRoot;

const IMPORT = /\b(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g;

/** Every relative import of the files under `floor`, as `file: target` with both paths relative to the root. */
function imports(floor: string): Array<{ file: string; target: string }> {
  return sources(join(root, floor)).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((match) => ({
      file: relative(root, file).split(sep).join('/'),
      target: relative(root, resolve(dirname(file), match[1]!)).split(sep).join('/'),
    })),
  );
}

function offenders(floor: string, forbidden: readonly string[], allowed: ReadonlySet<string> = new Set()): string[] {
  return imports(floor)
    .filter(({ file, target }) => forbidden.some((dir) => target.startsWith(`${dir}/`)) && !allowed.has(`${file} -> ${target}`))
    .map(({ file, target }) => `${file} -> ${target}`);
}

describe('import floors', () => {
  it('finds the imports it checks (the scan is not empty)', () => {
    // guards the checks below against a scan that silently matches nothing
    assert.ok(imports('hooks').some(({ target }) => target === 'storage/ports.ts'));
    assert.ok(imports('plugins').some(({ target }) => target === 'hooks/host.ts'));
    assert.ok(imports('protocols').some(({ target }) => target === 'protocols/app.ts'));
    assert.ok(imports('protocols').some(({ target }) => target.startsWith('plugins/')), 'the composition root loads the plugins');
  });

  it('storage/ never imports from protocols/, hooks/ or plugins/', () => {
    assert.deepEqual(offenders('storage', ['protocols', 'hooks', 'plugins']), []);
  });

  it('hooks/ never imports from protocols/ or plugins/', () => {
    assert.deepEqual(offenders('hooks', ['protocols', 'plugins']), []);
  });

  it('plugins/ never imports from protocols/', () => {
    assert.deepEqual(offenders('plugins', ['protocols']), []);
  });
});
