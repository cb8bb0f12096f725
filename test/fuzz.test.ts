/**
 * The bounded fuzz run of `npm test`: every target of test/fuzz/targets.ts with a few hundred generated inputs and
 * a fixed seed (reproducible in CI), and every linear-time family of test/fuzz/linearity.ts. `npm run fuzz` runs
 * the same properties longer with a random seed (test/fuzz/run.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TARGETS } from './fuzz/targets.ts';
import { FAMILIES, measure } from './fuzz/linearity.ts';

const RUNS = 150; // per unit of weight: about 3,000 inputs in all, a few seconds per runtime
const SEED = 20261206;

describe('fuzz: properties (bounded run)', () => {
  for (const target of TARGETS) {
    it(target.name, { todo: target.knownIssue }, async () => {
      await fc.assert(target.property(), { numRuns: Math.round(RUNS * (target.weight ?? 1)), seed: SEED });
    });
  }
});

describe('fuzz: linear time (n vs 8n)', () => {
  for (const family of FAMILIES) {
    it(family.name, { todo: family.knownIssue }, async () => {
      const m = await measure(family);
      assert.ok(m.ok, `8n took ${m.large.toFixed(1)} ms, n took ${m.small.toFixed(1)} ms: ${m.ratio.toFixed(1)}× (allowed 32×)`);
    });
  }
});
