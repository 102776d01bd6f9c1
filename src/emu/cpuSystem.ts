/**
 * System instructions: LGDT/LIDT/SGDT/SIDT, LTR/STR, LLDT/SLDT, INVLPG, HLT, CLI/STI and the other
 * flag instructions (CLD/STD/CLC/STC/CMC, CLAC/STAC), IN/OUT (the serial port, with the IOPL and
 * TSS I/O-bitmap check), CPUID, SWAPGS, WBINVD/INVD, RDTSC and UD2.
 */
import { M64 } from './bits.js';
import type { Cpu } from './cpu.js';
import type { Handler } from './cpuDecode.js';
import { readDescriptor, segmentFrom } from './cpuSegments.js';
import { DESC, FL, F_IMPLICIT, RAX, RBX, RCX, RDX, SEG_GS } from './cpuState.js';
import { CpuFault, VEC } from './exceptions.js';
import { CR4_BITS } from './cpuControl.js';
import { cpuid } from './features.js';

const gp = (code = 0): CpuFault => new CpuFault(VEC.GP, code);
const ring0 = (cpu: Cpu): void => {
  if (cpu.cpl !== 0) throw gp();
};

/** LGDT / LIDT m16&64: limit then base (a non-canonical base is #GP(0)). */
export function loadTable(which: 'gdtr' | 'idtr'): Handler {
  return (cpu, i) => {
    ring0(cpu);
    const va = cpu.ea(i);
    const limit = Number(cpu.read(va, 2));
    const base = cpu.read((va + 2n) & M64, 8);
    if (!cpu.canonical(base)) throw gp();
    cpu[which] = { base, limit };
  };
}

/** SGDT / SIDT m16&64. */
export function storeTable(which: 'gdtr' | 'idtr'): Handler {
  return (cpu, i) => {
    const va = cpu.ea(i);
    const t = cpu[which];
    cpu.write(va, 2, BigInt(t.limit));
    cpu.write((va + 2n) & M64, 8, t.base);
  };
}

/**
 * LTR r/m16: the selector must name an available 64-bit TSS in the GDT (16-byte descriptor);
 * TR is loaded and the descriptor marked busy.
 */
export const LTR: Handler = (cpu, i) => {
  ring0(cpu);
  const selector = Number(cpu.readOp(i, 0) & 0xffffn);
  if ((selector & 0xfffc) === 0) throw gp();
  if (selector & 4) throw gp(selector & 0xfffc);
  if ((selector & ~7) + 15 > cpu.gdtr.limit) throw gp(selector & 0xfffc);
  const d = readDescriptor(cpu, selector)!;
  if ((d.hi & DESC.S) !== 0 || ((d.hi >>> 8) & 0xf) !== 9) throw gp(selector & 0xfffc);
  if ((d.hi & DESC.P) === 0) throw new CpuFault(VEC.NP, selector & 0xfffc);
  const upper = cpu.read((d.address + 8n) & M64, 8, F_IMPLICIT);
  if (((upper >> 40n) & 0x1fn) !== 0n) throw gp(selector & 0xfffc);
  const tr = segmentFrom(selector, d);
  tr.base |= (upper & 0xffffffffn) << 32n;
  d.hi = (d.hi | 0x200) >>> 0; // type 9 -> 11: busy
  cpu.write((d.address + 4n) & M64, 4, BigInt(d.hi), F_IMPLICIT);
  tr.flags = d.hi;
  cpu.tr = tr;
};

/** STR r/m16. */
export const STR: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, BigInt(cpu.tr.selector));
};

/** LLDT r/m16: a null selector leaves the LDT unusable; otherwise an LDT descriptor (type 2) in the GDT. */
export const LLDT: Handler = (cpu, i) => {
  ring0(cpu);
  const selector = Number(cpu.readOp(i, 0) & 0xffffn);
  if ((selector & 0xfffc) === 0) {
    cpu.ldtr = { selector, base: 0n, limit: 0, flags: 0 };
    return;
  }
  if (selector & 4 || (selector & ~7) + 15 > cpu.gdtr.limit) throw gp(selector & 0xfffc);
  const d = readDescriptor(cpu, selector)!;
  if ((d.hi & DESC.S) !== 0 || ((d.hi >>> 8) & 0xf) !== 2) throw gp(selector & 0xfffc);
  if ((d.hi & DESC.P) === 0) throw new CpuFault(VEC.NP, selector & 0xfffc);
  const upper = cpu.read((d.address + 8n) & M64, 8, F_IMPLICIT);
  const ldt = segmentFrom(selector, d);
  ldt.base |= (upper & 0xffffffffn) << 32n;
  cpu.ldtr = ldt;
};

/** SLDT r/m16. */
export const SLDT: Handler = (cpu, i) => {
  cpu.writeOp(i, 0, BigInt(cpu.ldtr.selector));
};

/** INVLPG m: drops the translations of the page (a non-canonical address is a no-op). */
export const INVLPG: Handler = (cpu, i) => {
  ring0(cpu);
  const va = cpu.ea(i);
  if (cpu.canonical(va)) cpu.mmu.invalidatePage(va);
};

/** HLT: the CPU stops until an interrupt, and this machine has no interrupt source. */
export const HLT: Handler = (cpu) => {
  ring0(cpu);
  cpu.halted = true;
};

const iopl = (cpu: Cpu): number => (cpu.rflags >>> 12) & 3;

/** CLI (#GP(0) when CPL > IOPL). */
export const CLI: Handler = (cpu) => {
  if (cpu.cpl > iopl(cpu)) throw gp();
  cpu.rflags &= ~FL.IF;
};

/** STI (#GP(0) when CPL > IOPL); interrupts stay inhibited for one more instruction. */
export const STI: Handler = (cpu) => {
  if (cpu.cpl > iopl(cpu)) throw gp();
  if (!cpu.flag(FL.IF)) cpu.inhibitIrq = true;
  cpu.rflags |= FL.IF;
};

/** CLD, STD, CLC, STC, CMC. */
export function flagOp(bit: number, op: 'clear' | 'set' | 'flip'): Handler {
  return (cpu) => {
    cpu.rflags = op === 'clear' ? cpu.rflags & ~bit : op === 'set' ? cpu.rflags | bit : cpu.rflags ^ bit;
  };
}

/** CLAC / STAC: clear or set EFLAGS.AC (#UD without SMAP support or above CPL 0). */
export function acOp(set: boolean): Handler {
  return (cpu) => {
    if (!cpu.features.smap || cpu.cpl !== 0) throw new CpuFault(VEC.UD);
    cpu.rflags = set ? cpu.rflags | FL.AC : cpu.rflags & ~FL.AC;
  };
}

/** Above IOPL, the TSS I/O permission bitmap must allow every port of the access (SDM 19.5.2). */
function checkIoPermission(cpu: Cpu, port: number, size: number): void {
  if (cpu.cpl <= iopl(cpu)) return;
  const tr = cpu.tr;
  if (tr.limit < 0x67) throw gp();
  const mapBase = Number(cpu.read((tr.base + 0x66n) & M64, 2, F_IMPLICIT));
  const at = mapBase + (port >>> 3);
  if (at + 1 > tr.limit) throw gp();
  const bits = Number(cpu.read((tr.base + BigInt(at)) & M64, 2, F_IMPLICIT));
  const mask = ((1 << size) - 1) << (port & 7);
  if (bits & mask) throw gp();
}

/** OUT imm8/DX, AL/AX/EAX. */
export const OUT: Handler = (cpu, i) => {
  const port = Number(cpu.readOp(i, 0) & 0xffffn);
  const size = i.ops[1]!.size;
  checkIoPermission(cpu, port, size);
  cpu.ports.write(port, size, Number(cpu.readOp(i, 1)));
};

/** IN AL/AX/EAX, imm8/DX. */
export const IN: Handler = (cpu, i) => {
  const port = Number(cpu.readOp(i, 1) & 0xffffn);
  const size = i.opSize;
  checkIoPermission(cpu, port, size);
  cpu.writeOp(i, 0, BigInt(cpu.ports.read(port, size)));
};

/** CPUID: leaf EAX, subleaf ECX. */
export const CPUID: Handler = (cpu) => {
  const pke = (Number(cpu.cr4 & 0xffffffffn) & CR4_BITS.PKE) !== 0;
  const r = cpuid(cpu.features, Number(cpu.regs[RAX]! & 0xffffffffn), Number(cpu.regs[RCX]! & 0xffffffffn), pke);
  cpu.regs[RAX] = BigInt(r.eax >>> 0);
  cpu.regs[RBX] = BigInt(r.ebx >>> 0);
  cpu.regs[RCX] = BigInt(r.ecx >>> 0);
  cpu.regs[RDX] = BigInt(r.edx >>> 0);
};

/** SWAPGS: exchanges the GS base with IA32_KERNEL_GS_BASE (CPL 0). */
export const SWAPGS: Handler = (cpu) => {
  ring0(cpu);
  const gs = cpu.segs[SEG_GS]!;
  const k = cpu.msr.kernelGsBase;
  cpu.msr.kernelGsBase = gs.base;
  cpu.segs[SEG_GS] = { ...gs, base: k };
};

/** WBINVD / INVD: no caches to write back or drop (CPL 0). */
export const WBINVD: Handler = (cpu) => ring0(cpu);

/** RDTSC: EDX:EAX = instructions executed (#GP(0) above CPL 0 with CR4.TSD). */
export const RDTSC: Handler = (cpu) => {
  if (cpu.cpl !== 0 && (Number(cpu.cr4 & 0xffffffffn) & CR4_BITS.TSD) !== 0) throw gp();
  const t = BigInt(cpu.instructions);
  cpu.regs[RAX] = t & 0xffffffffn;
  cpu.regs[RDX] = (t >> 32n) & 0xffffffffn;
};

/** UD2 (and UD1, UD0): the architectural #UD. */
export const UD2: Handler = () => {
  throw new CpuFault(VEC.UD);
};
