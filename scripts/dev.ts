/**
 * Runs the CLI from source (no build): `npx tsx scripts/dev.ts walk --example 0x...`.
 */
import { run } from '../src/cli/main.js';

void run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
  process.exitCode = code;
});
