/**
 * `npm run fuzz`: the properties of test/fuzz/targets.ts with many more inputs than `npm test`, then the
 * linear-time families at a larger size.
 *
 *   FUZZ_RUNS=20000 FUZZ_SEED=42 FUZZ_TARGET=mime npm run fuzz
 *
 * FUZZ_RUNS   inputs per target (times its weight); default 5000
 * FUZZ_SEED   seed (default: random, printed, so a failing run can be replayed)
 * FUZZ_TARGET only the targets whose name contains this text (case-insensitive)
 *
 * The seed corpus is test/fixtures/*.eml (MIME) and the client lines in targets.ts (SEEDS_*), mutated by the
 * generators. A failure prints the seed, the shrunk counterexample and its error; exit code 1.
 */
import fc from 'fast-check';
import { TARGETS } from './targets.ts';
import { FAMILIES, measure } from './linearity.ts';
import { env, setExitCode } from '../../hooks/runtime.ts';

const vars = env();
const runs = Number(vars.FUZZ_RUNS ?? 5000);
const seed = vars.FUZZ_SEED !== undefined ? Number(vars.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const only = (vars.FUZZ_TARGET ?? '').toLowerCase();
const out = (line: string) => console.log(line);

out(`fuzz: ${runs} runs per target, seed ${seed}${only ? `, targets matching "${only}"` : ''}`);
let failed = 0;
for (const target of TARGETS) {
  if (only && !target.name.toLowerCase().includes(only)) continue;
  const numRuns = Math.round(runs * (target.weight ?? 1));
  const started = performance.now();
  const result = await fc.check(target.property(), { numRuns, seed });
  const ms = (performance.now() - started).toFixed(0);
  if (!result.failed) {
    out(`ok    ${target.name} (${result.numRuns} inputs, ${ms} ms)`);
    continue;
  }
  const known = target.knownIssue ? ` [known: ${target.knownIssue}]` : '';
  if (!target.knownIssue) failed++;
  out(`FAIL  ${target.name}${known}`);
  out(`      seed ${result.seed}, path "${result.counterexamplePath}"`);
  out(`      counterexample ${fc.stringify(result.counterexample)}`);
  const error = result.errorInstance as Error | undefined;
  out(`      ${(error?.stack ?? String(error)).split('\n').slice(0, 8).join('\n      ')}`);
}
for (const family of FAMILIES) {
  if (only && !family.name.toLowerCase().includes(only)) continue;
  const m = await measure(family, 2);
  if (!m.ok && !family.knownIssue) failed++;
  out(`${m.ok ? 'ok   ' : 'SLOW '} ${family.name}: 2n ${m.small.toFixed(1)} ms, 16n ${m.large.toFixed(1)} ms (${m.ratio.toFixed(1)}×)`);
}
out(failed ? `fuzz: ${failed} failing` : 'fuzz: all properties held');
setExitCode(failed ? 1 : 0);
