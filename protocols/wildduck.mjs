#!/usr/bin/env node
// Entry point of the `wildduck` bin on Node.js: loads TypeScript through tsx, then runs the CLI.
// (On Deno: `deno run -A protocols/cli/main.ts ...`.)
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli/main.ts');
await main();
