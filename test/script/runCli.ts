/**
 * Running `pagewalk run -` in process with a script on standard input (Io.stdin), and the CLI's
 * one-shot commands beside it, for parity checks.
 */
import { run } from '../../src/cli/main.js';
import type { CliResult } from '../helpers/cli.js';

/** Runs `pagewalk run - ARGS...` with `script` on stdin, colour off. */
export async function runScript(script: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const status = await run(['run', '-', ...args], {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: { ...env },
    stdin: (async function* () {
      // Two chunks, split inside a line, as a pipe may deliver them.
      const cut = Math.floor(script.length / 2);
      yield Buffer.from(script.slice(0, cut));
      yield script.slice(cut);
    })(),
  });
  return { status, stdout, stderr };
}

/** The JSON lines of `stdout`, parsed. */
export function jsonLines(stdout: string): { line: number; command: string; result?: unknown; error?: { code: string; message: string } }[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}
