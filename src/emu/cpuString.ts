/**
 * String instructions: STOS, MOVS, LODS, CMPS and SCAS in byte, word, dword and qword forms, with
 * REP / REPE / REPNE. Each iteration is final once done (a fault in the middle leaves RCX, RSI and
 * RDI where that iteration found them, RIP at the instruction, as on hardware), and a long REP
 * yields after a budget of iterations and resumes at the same RIP, as if interrupted.
 */
import { M64, MASK } from './bits.js';
import { sub } from './cpuAlu.js';
import type { Handler } from './cpuDecode.js';
import { FL, RAX, RCX, RDI, RSI } from './cpuState.js';

/** Iterations of one REP instruction per step before it yields. */
export const REP_BUDGET = 1 << 16;

type StringKind = 'stos' | 'movs' | 'lods' | 'cmps' | 'scas';

const TOUCHED = [RCX, RSI, RDI, RAX];

/** A string instruction of `kind` moving `size` bytes per iteration. */
export function stringOp(kind: StringKind, size: 1 | 2 | 4 | 8): Handler {
  const mask = MASK[size]!;
  return (cpu, i) => {
    const amask = i.addr32 ? 0xffffffffn : M64;
    const step = cpu.flag(FL.DF) ? -BigInt(size) : BigInt(size);
    const srcBase = i.seg >= 0 ? cpu.segs[i.seg]!.base : 0n;
    const rep = i.rep || i.repne;
    let budget = REP_BUDGET;
    for (;;) {
      if (rep) {
        if ((cpu.regs[RCX]! & amask) === 0n) return;
        if (budget-- === 0) {
          cpu.nextRip = cpu.rip;
          cpu.repContinues = true;
          return;
        }
      }
      const rsi = cpu.regs[RSI]! & amask;
      const rdi = cpu.regs[RDI]! & amask;
      switch (kind) {
        case 'stos':
          cpu.write(rdi, size, cpu.regs[RAX]! & mask);
          cpu.regs[RDI] = (rdi + step) & amask;
          break;
        case 'movs': {
          const v = cpu.read((rsi + srcBase) & M64, size);
          cpu.write(rdi, size, v);
          cpu.regs[RSI] = (rsi + step) & amask;
          cpu.regs[RDI] = (rdi + step) & amask;
          break;
        }
        case 'lods': {
          const v = cpu.read((rsi + srcBase) & M64, size);
          cpu.regs[RAX] = size >= 4 ? v : (cpu.regs[RAX]! & ~mask) | v;
          cpu.regs[RSI] = (rsi + step) & amask;
          break;
        }
        case 'cmps': {
          const a = cpu.read((rsi + srcBase) & M64, size);
          const b = cpu.read(rdi, size);
          sub(cpu, a, b, 0n, size);
          cpu.regs[RSI] = (rsi + step) & amask;
          cpu.regs[RDI] = (rdi + step) & amask;
          break;
        }
        case 'scas': {
          const b = cpu.read(rdi, size);
          sub(cpu, cpu.regs[RAX]! & mask, b, 0n, size);
          cpu.regs[RDI] = (rdi + step) & amask;
          break;
        }
      }
      if (!rep) return;
      cpu.regs[RCX] = (cpu.regs[RCX]! - 1n) & amask;
      cpu.checkpoint(TOUCHED);
      if (kind === 'cmps' || kind === 'scas') {
        const zf = cpu.flag(FL.ZF);
        if ((i.rep && !zf) || (i.repne && zf)) return;
      }
    }
  };
}
