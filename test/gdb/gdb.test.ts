/**
 * The real GDB against `pagewalk emu` (the CLI, started from the sources in a child process):
 * GDB connects in batch mode, reads registers through the target description (rip, cr3 and efer
 * decoded with their flags), dumps the stack, steps, breaks at the scenario's `mov cr3` and
 * continues to it, steps over it, asks the monitor, and detaches, which resumes the guest. Every
 * value GDB prints is checked against the same scenario run on a Machine in this process.
 * Where gdb is not installed this is skipped with a visible notice, or fails with
 * PAGEWALK_REQUIRE_GDB=1 (which .ci/run sets after installing GDB).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { expect, it } from 'vitest';
import { Machine } from '../../src/emu/index.js';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { QmpClient } from '../../src/qmp/client.js';
import { spawnEmu } from '../helpers/emuProcess.js';
import { describeGdb } from '../proxy/gdbMi.js';


/** gdb on PATH, or null. */
function findGdb(): string | null {
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(d, 'gdb'), constants.X_OK);
      return join(d, 'gdb');
    } catch {
      // not here
    }
  }
  return null;
}

const GDB = findGdb();

/** Runs gdb in batch mode with `commands`; resolves with what it printed. */
function gdbBatch(commands: string[]): Promise<{ stdout: string; stderr: string }> {
  const args = ['-nx', '-batch', ...commands.flatMap((c) => ['-ex', c])];
  return new Promise((resolve, reject) => {
    execFile(GDB!, args, { timeout: 60_000, env: { ...process.env, TERM: 'dumb' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`gdb failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `pagewalk emu ... --json` from the sources; resolves once it says where it listens. */
async function startEmu(argv: string[]): Promise<{ child: ChildProcess; gdb: string; qmp: string; exited: Promise<number | null> }> {
  const emu = await spawnEmu(argv);
  return { child: emu.child, gdb: emu.info.gdb, qmp: emu.info.qmp!, exited: emu.exited };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The value GDB printed for register `name` in `info registers` output. */
function shownRegister(text: string, name: string, from = 0): { value: bigint; rest: string } {
  const m = new RegExp(`^${name}\\s+(0x[0-9a-f]+)\\s+(.*)$`, 'm').exec(text.slice(from));
  if (!m) throw new Error(`gdb printed no ${name}:\n${text}`);
  return { value: BigInt(m[1]!), rest: m[2]!.trim() };
}

function suite(): void {
  it('connects to pagewalk emu and reads registers, memory, steps, breaks, continues and detaches', async () => {
    const build = findScenario('good').build();
    const cr3Write = build.symbols.cr3_write!;
    // The same scenario in this process: what GDB should see at each point.
    const m = new Machine(build.config);
    const rsp = m.getRegister('rsp');
    const stack = new DataView(m.readVirtual(rsp, 32).buffer);
    m.step();
    const afterStep = m.getRegister('rip');
    m.addBreakpoint(cr3Write);
    expect(m.run().reason).toBe('breakpoint');
    const [loaderCr3, newCr3] = [m.getRegister('cr3'), m.getRegister('rax')];
    m.step();
    const afterCr3Write = m.getRegister('rip');
    expect(m.getRegister('cr3')).toBe(newCr3);

    const dir = mkdtempSync(join(tmpdir(), 'pagewalk-gdb-'));
    const emu = await startEmu(['--scenario', 'good', '--gdb-port', '0', '--qmp', join(dir, 'qmp.sock')]);
    try {
      const { stdout, stderr } = await gdbBatch([
        'set confirm off',
        'set pagination off',
        `target remote ${emu.gdb}`,
        'info registers rip cr3 efer',
        'x/4gx $rsp',
        'stepi',
        'info registers rip',
        `break *${hex(cr3Write)}`,
        'continue',
        'info registers rip cr3 rax',
        'stepi',
        'info registers rip cr3',
        'monitor info status',
        'detach',
      ]);
      // info registers rip cr3 efer, at the hand-over: GDB decodes the flag types of the target description.
      expect(shownRegister(stdout, 'rip').value).toBe(build.config.cpu.rip);
      expect(shownRegister(stdout, 'cr3')).toEqual({ value: loaderCr3, rest: `[ PDBR=${loaderCr3 >> 12n} PCID=0 ]` });
      expect(shownRegister(stdout, 'efer')).toEqual({ value: 0xd00n, rest: '[ NXE LMA LME ]' });
      // x/4gx $rsp
      const words = [0, 8, 16, 24].map((o) => `0x${stack.getBigUint64(o, true).toString(16).padStart(16, '0')}`);
      expect(stdout).toContain(`${hex(rsp)}:\t${words[0]}\t${words[1]}\n${hex(rsp + 16n)}:\t${words[2]}\t${words[3]}\n`);
      // stepi
      const afterStepi = stdout.indexOf('rip', stdout.indexOf(`${hex(rsp + 16n)}:`));
      expect(shownRegister(stdout, 'rip', afterStepi).value).toBe(afterStep);
      // break *cr3_write + continue
      expect(stdout).toContain(`Breakpoint 1 at ${hex(cr3Write)}`);
      const hit = stdout.indexOf('Breakpoint 1,');
      expect(hit).toBeGreaterThan(0);
      expect(shownRegister(stdout, 'rip', hit).value).toBe(cr3Write);
      expect(shownRegister(stdout, 'cr3', hit).value).toBe(loaderCr3);
      expect(shownRegister(stdout, 'rax', hit).value).toBe(newCr3);
      // stepi over the mov cr3: the new tables are loaded
      const stepped = stdout.indexOf('rip', stdout.indexOf('rax', hit));
      expect(shownRegister(stdout, 'rip', stepped).value).toBe(afterCr3Write);
      expect(shownRegister(stdout, 'cr3', stepped).value).toBe(newCr3);
      // GDB prints monitor output (O packets) on its target-output stream, stderr.
      expect(stderr).toContain('VM status: paused (debug)');
      expect(stdout).toContain('[Inferior 1 (process 1) detached]');
      // Detaching resumed the guest.
      const q = await QmpClient.connect(emu.qmp);
      expect(await q.execute('query-status')).toMatchObject({ status: 'running', running: true });
      await q.close();
    } finally {
      emu.child.kill('SIGTERM');
      expect(await emu.exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
}

describeGdb('the real GDB against pagewalk emu', suite);
