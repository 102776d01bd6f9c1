/**
 * Control registers and MSRs: MOV to and from CR0, CR2, CR3, CR4 and CR8 with the SDM's #GP
 * checks and TLB effects (a CR3 load flushes the non-global translations of the PCID it loads
 * unless bit 63 says not to with CR4.PCIDE; CR4 changes to PGE, PAE, PCIDE or SMEP flush
 * everything), EFER and the other MSRs through RDMSR/WRMSR, and PKRU through RDPKRU/WRPKRU.
 */
import { M64 } from './bits.js';
import type { Cpu } from './cpu.js';
import type { Handler } from './cpuDecode.js';
import { MSR, RAX, RCX, RDX, SEG_FS, SEG_GS } from './cpuState.js';
import { CpuFault, VEC } from './exceptions.js';

const gp = (): CpuFault => new CpuFault(VEC.GP, 0);

/** CR4 bits: VME..PKS. */
export const CR4_BITS = {
  TSD: 1 << 2,
  DE: 1 << 3,
  PSE: 1 << 4,
  PAE: 1 << 5,
  MCE: 1 << 6,
  PGE: 1 << 7,
  PCE: 1 << 8,
  OSFXSR: 1 << 9,
  OSXMMEXCPT: 1 << 10,
  LA57: 1 << 12,
  PCIDE: 1 << 17,
  SMEP: 1 << 20,
  SMAP: 1 << 21,
  PKE: 1 << 22,
  PKS: 1 << 24,
} as const;

/** The CR4 bits this CPU lets software set. */
export function cr4Allowed(cpu: Cpu): number {
  const f = cpu.features;
  const B = CR4_BITS;
  let m = B.TSD | B.DE | B.PSE | B.PAE | B.MCE | B.PCE | B.OSFXSR | B.OSXMMEXCPT;
  if (f.pge) m |= B.PGE;
  if (f.la57) m |= B.LA57;
  if (f.pcid) m |= B.PCIDE;
  if (f.smep) m |= B.SMEP;
  if (f.smap) m |= B.SMAP;
  if (f.pku) m |= B.PKE;
  if (f.pks) m |= B.PKS;
  return m >>> 0;
}

const longMode = (cpu: Cpu): boolean => (cpu.efer & 0x400n) !== 0n;

/** MOV to CR0: #GP for bits 63:32, PG without PE, NW without CD, or clearing PG in long mode. */
export function writeCr0(cpu: Cpu, value: bigint): void {
  if (value >> 32n) throw gp();
  const pg = (value & 0x80000000n) !== 0n;
  if (pg && (value & 1n) === 0n) throw gp();
  if ((value & 0x20000000n) !== 0n && (value & 0x40000000n) === 0n) throw gp();
  if (!pg && longMode(cpu)) throw gp();
  const wasPg = (cpu.cr0 & 0x80000000n) !== 0n;
  cpu.cr0 = value | 0x10n; // ET is hardwired to 1
  if (wasPg && !pg) cpu.mmu.tlb.flushAll();
  cpu.updatePaging();
}

/**
 * MOV to CR3: #GP for reserved bits (63:MAXPHYADDR; bit 63 is the no-flush hint with CR4.PCIDE).
 * Flushes the new PCID's non-global translations (all non-global ones without PCIDE) unless the
 * hint is set; under the 'qemu-tcg' TLB model it flushes everything, as QEMU 7.2's TCG does.
 */
export function writeCr3(cpu: Cpu, value: bigint): void {
  const pcide = (Number(cpu.cr4 & 0xffffffffn) & CR4_BITS.PCIDE) !== 0;
  const noFlush = pcide && (value >> 63n) === 1n;
  const v = pcide ? value & ~(1n << 63n) : value;
  if (v >> BigInt(cpu.features.maxPhyAddr)) throw gp();
  cpu.cr3 = v;
  cpu.updatePaging();
  if (cpu.tlbModel === 'qemu-tcg') cpu.mmu.tlb.flushAll();
  else if (!pcide) cpu.mmu.tlb.flushNonGlobal();
  else if (!noFlush) cpu.mmu.tlb.flushPcid(Number(v & 0xfffn));
}

/** MOV to CR4: #GP for unsupported bits, for clearing PAE or changing LA57 in long mode, for PCIDE with a nonzero PCID. */
export function writeCr4(cpu: Cpu, value: bigint): void {
  if (value >> 32n) throw gp();
  const v = Number(value);
  const old = Number(cpu.cr4 & 0xffffffffn);
  const B = CR4_BITS;
  if ((v & ~cr4Allowed(cpu)) !== 0) throw gp();
  if (longMode(cpu) && ((v & B.PAE) === 0 || (v & B.LA57) !== (old & B.LA57))) throw gp();
  if ((v & B.PCIDE) && !(old & B.PCIDE) && ((cpu.cr3 & 0xfffn) !== 0n || !longMode(cpu))) throw gp();
  cpu.cr4 = BigInt(v >>> 0);
  const changed = (v ^ old) >>> 0;
  if (changed & (B.PGE | B.PAE | B.PSE | B.LA57) || (old & B.PCIDE && !(v & B.PCIDE)) || (v & B.SMEP && !(old & B.SMEP))) {
    cpu.mmu.tlb.flushAll();
  }
  cpu.updatePaging();
}

/** MOV CRn, r64 and MOV r64, CRn (CPL 0 only; CR1, CR5-CR7 and CR9-CR15 do not exist: #UD). */
export function movCr(toCr: boolean): Handler {
  return (cpu, i) => {
    const n = i.ops[toCr ? 0 : 1]!.reg;
    if (n !== 0 && n !== 2 && n !== 3 && n !== 4 && n !== 8) throw new CpuFault(VEC.UD);
    if (cpu.cpl !== 0) throw gp();
    if (!toCr) {
      const v = n === 0 ? cpu.cr0 : n === 2 ? cpu.cr2 : n === 3 ? cpu.cr3 : n === 4 ? cpu.cr4 : cpu.cr8;
      cpu.writeOp(i, 0, v);
      return;
    }
    const v = cpu.readOp(i, 1);
    switch (n) {
      case 0: writeCr0(cpu, v); break;
      case 2: cpu.cr2 = v; break;
      case 3: writeCr3(cpu, v); break;
      case 4: writeCr4(cpu, v); break;
      default:
        if (v >> 4n) throw gp();
        cpu.cr8 = v;
    }
  };
}

/** WRMSR of EFER: SCE, LME and NXE (with NX support) are writable, LMA is kept, the rest #GP; LME cannot change with paging on. */
function writeEfer(cpu: Cpu, v: bigint): void {
  const allowed = 0x1n | 0x100n | 0x400n | (cpu.features.nx ? 0x800n : 0n);
  if (v & ~allowed) throw gp();
  if ((cpu.cr0 & 0x80000000n) !== 0n && ((v ^ cpu.efer) & 0x100n) !== 0n) throw gp();
  cpu.efer = (v & ~0x400n) | (cpu.efer & 0x400n);
  cpu.updatePaging();
}

/** The value of MSR `index`, or undefined when the CPU has no such MSR. */
export function readMsr(cpu: Cpu, index: number): bigint | undefined {
  switch (index) {
    case MSR.EFER: return cpu.efer;
    case MSR.STAR: return cpu.msr.star;
    case MSR.LSTAR: return cpu.msr.lstar;
    case MSR.CSTAR: return cpu.msr.cstar;
    case MSR.FMASK: return cpu.msr.fmask;
    case MSR.FS_BASE: return cpu.segs[SEG_FS]!.base;
    case MSR.GS_BASE: return cpu.segs[SEG_GS]!.base;
    case MSR.KERNEL_GS_BASE: return cpu.msr.kernelGsBase;
    case MSR.TSC_AUX: return cpu.msr.tscAux;
    case MSR.TSC: return BigInt(cpu.instructions);
    case MSR.PAT: return cpu.msr.pat;
    case MSR.APIC_BASE: return cpu.msr.apicBase;
    case MSR.MISC_ENABLE: return cpu.msr.miscEnable;
    case MSR.PKRS: return cpu.features.pks ? BigInt(cpu.mmu.pkrs) : undefined;
    default: return undefined;
  }
}

/** Writes MSR `index`; throws CpuFault(#GP(0)) for an unknown MSR or a value it refuses. */
export function writeMsr(cpu: Cpu, index: number, v: bigint): void {
  const canonicalBase = (): bigint => {
    if (!cpu.canonical(v)) throw gp();
    return v;
  };
  switch (index) {
    case MSR.EFER: return writeEfer(cpu, v);
    case MSR.STAR: cpu.msr.star = v; return;
    case MSR.LSTAR: cpu.msr.lstar = canonicalBase(); return;
    case MSR.CSTAR: cpu.msr.cstar = canonicalBase(); return;
    case MSR.FMASK: cpu.msr.fmask = v & 0xffffffffn; return;
    case MSR.FS_BASE: cpu.segs[SEG_FS] = { ...cpu.segs[SEG_FS]!, base: canonicalBase() }; return;
    case MSR.GS_BASE: cpu.segs[SEG_GS] = { ...cpu.segs[SEG_GS]!, base: canonicalBase() }; return;
    case MSR.KERNEL_GS_BASE: cpu.msr.kernelGsBase = canonicalBase(); return;
    case MSR.TSC_AUX: cpu.msr.tscAux = v & 0xffffffffn; return;
    case MSR.PAT: cpu.msr.pat = v; return;
    case MSR.APIC_BASE: cpu.msr.apicBase = v; return;
    case MSR.MISC_ENABLE: cpu.msr.miscEnable = v; return;
    case MSR.PKRS:
      if (!cpu.features.pks || v >> 32n) throw gp();
      cpu.mmu.pkrs = Number(v);
      return;
    default: throw gp();
  }
}

/** RDMSR: EDX:EAX = MSR[ECX] (CPL 0; unknown MSRs #GP(0)). */
export const RDMSR: Handler = (cpu) => {
  if (cpu.cpl !== 0) throw gp();
  const v = readMsr(cpu, Number(cpu.regs[RCX]! & 0xffffffffn));
  if (v === undefined) throw gp();
  cpu.regs[RAX] = v & 0xffffffffn;
  cpu.regs[RDX] = (v >> 32n) & 0xffffffffn;
};

/** WRMSR: MSR[ECX] = EDX:EAX (CPL 0). */
export const WRMSR: Handler = (cpu) => {
  if (cpu.cpl !== 0) throw gp();
  const v = ((cpu.regs[RDX]! & 0xffffffffn) << 32n) | (cpu.regs[RAX]! & 0xffffffffn);
  writeMsr(cpu, Number(cpu.regs[RCX]! & 0xffffffffn), v & M64);
};

const pkeOn = (cpu: Cpu): boolean => (Number(cpu.cr4 & 0xffffffffn) & CR4_BITS.PKE) !== 0;

/** RDPKRU: EAX = PKRU, EDX = 0 (#UD without CR4.PKE, #GP(0) unless ECX = 0). */
export const RDPKRU: Handler = (cpu) => {
  if (!pkeOn(cpu)) throw new CpuFault(VEC.UD);
  if ((cpu.regs[RCX]! & 0xffffffffn) !== 0n) throw gp();
  cpu.regs[RAX] = BigInt(cpu.mmu.pkru >>> 0);
  cpu.regs[RDX] = 0n;
};

/** WRPKRU: PKRU = EAX (#UD without CR4.PKE, #GP(0) unless ECX = EDX = 0). */
export const WRPKRU: Handler = (cpu) => {
  if (!pkeOn(cpu)) throw new CpuFault(VEC.UD);
  if ((cpu.regs[RCX]! & 0xffffffffn) !== 0n || (cpu.regs[RDX]! & 0xffffffffn) !== 0n) throw gp();
  cpu.mmu.pkru = Number(cpu.regs[RAX]! & 0xffffffffn);
};
