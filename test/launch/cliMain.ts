/**
 * The CLI as a real process for tests that need real signals and a real terminal (launch, proxy):
 * `node --import tsx test/launch/cliMain.ts ARGS...` runs what `bin/pagewalk ARGS...` runs, from
 * the sources, without building dist/.
 */
import { run } from '../../src/cli/main.js';

const status = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
process.exitCode = status;
