/**
 * Runs the CLI from source (no build): `node --import tsx scripts/dev.ts walk --example 0x...`.
 */
import { run } from '../src/cli/main.js';

// As bin/pagewalk: `... | head` closes stdout early; stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

void run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((code) => {
  process.exitCode = code;
});
