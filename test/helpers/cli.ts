/**
 * Running the CLI in tests: in process through `run` (fast, exact streams), or as the real
 * `bin/pagewalk` in a child process (what users run; it needs the build in dist/: call
 * `buildDist()` first).
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/main.js';

/** What a CLI run printed, and its exit status. */
export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in process with `argv`; colour off unless `env` says otherwise. */
export async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const status = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: { ...env },
  });
  return { status, stdout, stderr };
}

/** The repository's bin/pagewalk. */
export const BIN = fileURLToPath(new URL('../../bin/pagewalk', import.meta.url));

/** Runs bin/pagewalk in a child process. */
export function spawnCli(argv: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...argv], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pagewalk ${argv.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * Builds dist/ with the project's TypeScript (as `npm ci` does through `prepare`). A no-op in test
 * files once the global setup has built it for the whole run.
 */
export function buildDist(): void {
  if (process.env.PAGEWALK_DIST_BUILT === '1') return;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'pipe',
  });
}
