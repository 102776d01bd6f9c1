/**
 * `pagewalk emu ... --json` as a real process, run from the sources: started, and awaited until its
 * first line says where its gdbstub (and QMP) listen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running `pagewalk emu`. */
export interface EmuProcess {
  child: ChildProcess;
  /** Its first line: where it listens. */
  info: { gdb: string; qmp: string | null };
  /** Resolves with its exit code. */
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts `pagewalk emu ARGV --json`; rejects (the process killed) when it does not say where it listens within 30 s. */
export async function spawnEmu(argv: string[]): Promise<EmuProcess> {
  const script = `const { run } = await import(${JSON.stringify(join(ROOT, 'src/cli/main.ts'))}); process.exitCode = await run(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'emu', ...argv, '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('\n')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`pagewalk emu did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, info: JSON.parse(out.split('\n')[0]!) as EmuProcess['info'], exited, stderr: () => err };
}
