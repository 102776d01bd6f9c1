/**
 * Running single instructions for the semantics tests: one machine whose code page is rewritten
 * for each case (the decode cache checks bytes, so this is safe), registers and flags set by
 * name, one step, then registers, flags and memory read back. Instruction bytes are written as
 * hex with their Intel-syntax text, and `decodesAs` checks that the two agree.
 */
import { Assembler, disassemble } from '../../src/asm/index.js';
import type { GprName, Machine, StopEvent } from '../../src/emu/index.js';
import { CODE_VA, DATA_VA, testMachine, type TestMachineOptions } from './fixtures.js';

/** Bytes from hex text ("48 01 d8"). */
export function hexBytes(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`not hex: ${text}`);
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** RFLAGS status bits as QEMU's dump shows them: D O S Z A P C, '-' when clear. */
export function flagLetters(rflags: number): string {
  const bits: [number, string][] = [[0x400, 'D'], [0x800, 'O'], [0x80, 'S'], [0x40, 'Z'], [0x10, 'A'], [0x4, 'P'], [0x1, 'C']];
  return bits.map(([b, c]) => (rflags & b ? c : '-')).join('');
}

/** RFLAGS from letters in that order ('-OS-A-C'); bit 1 set. */
export function flagsOf(letters: string): number {
  const bits: Record<string, number> = { D: 0x400, O: 0x800, S: 0x80, Z: 0x40, A: 0x10, P: 0x4, C: 0x1 };
  let f = 2;
  for (const c of letters) if (c !== '-') f |= bits[c] ?? 0;
  return f;
}

/** The state a case starts from. */
export interface Init {
  regs?: Partial<Record<GprName, bigint>>;
  /** RFLAGS letters, default all clear. */
  flags?: string;
  /** Raw RFLAGS (wins over `flags`). */
  rflags?: number;
  /** Bytes to place in the data area (at DATA_VA + offset). */
  data?: [offset: number, bytes: Uint8Array][];
  fsBase?: bigint;
  gsBase?: bigint;
}

/** One machine for many single-instruction cases. */
export class Harness {
  readonly m: Machine;

  constructor(opts: Partial<TestMachineOptions> = {}) {
    this.m = testMachine({ asm: new Assembler(64).hlt(), ...opts }).m;
  }

  /** Executes the instruction `hex` once from `init`; returns the stop. */
  exec(hex: string, init: Init = {}): StopEvent {
    const m = this.m;
    const code = hexBytes(hex);
    m.writeVirtual(CODE_VA, code);
    m.writeVirtual(CODE_VA + BigInt(code.length), new Uint8Array([0xf4]));
    for (const n of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const) {
      m.setRegister(n, init.regs?.[n] ?? 0n);
    }
    m.setRegister('rsp', init.regs?.rsp ?? DATA_VA + 0x8000n);
    m.setRegister('rip', CODE_VA);
    m.setRegister('eflags', BigInt(init.rflags ?? flagsOf(init.flags ?? '')));
    m.setRegister('fs_base', init.fsBase ?? 0n);
    m.setRegister('gs_base', init.gsBase ?? 0n);
    m.writeVirtual(DATA_VA, new Uint8Array(0x100));
    for (const [off, bytes] of init.data ?? []) m.writeVirtual(DATA_VA + BigInt(off), bytes);
    return m.step();
  }

  /** A register. */
  reg(name: string): bigint {
    return this.m.getRegister(name);
  }

  /** The status flags as letters. */
  flags(): string {
    return flagLetters(Number(this.m.getRegister('eflags')));
  }

  /** `n` bytes of the data area at `offset`, as a little-endian number. */
  data(offset: number, n = 8): bigint {
    const b = this.m.readVirtual(DATA_VA + BigInt(offset), n);
    let v = 0n;
    for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
    return v;
  }
}

/** Intel-syntax text of the instruction in `hex` placed at CODE_VA (the fixtures' own check). */
export function decodesAs(hex: string): string {
  const lines = disassemble(hexBytes(hex), 64, CODE_VA, 1);
  return lines[0]?.text ?? '';
}

/** Little-endian bytes of a `size`-byte value. */
export function le(value: bigint, size = 8): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = Number((value >> BigInt(8 * k)) & 0xffn);
  return b;
}
