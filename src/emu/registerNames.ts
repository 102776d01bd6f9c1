/**
 * Registers by name, for debuggers and monitors: the names and order of QEMU's x86-64 target.xml
 * (rax..r15, rip, eflags, cs..gs, fs_base, gs_base, k_gs_base, cr0..cr4, cr8, efer) plus pkru.
 * Writes take effect at once, as a debugger's do: no #GP checks, and the TLB is flushed when a
 * paging register changes.
 */
import { DESC, GPR_NAMES, SEG_CS, SEG_NAMES, type SegmentCache } from './cpuState.js';
import type { Cpu } from './cpu.js';
import { EmuError } from './errors.js';

/** Register names in QEMU's target.xml order (the RSP register numbers), then pkru. */
export const REGISTER_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base', 'k_gs_base',
  'cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'pkru',
] as const;

/** A register name. */
export type RegisterName = (typeof REGISTER_NAMES)[number];

const gprIndex = (name: string): number => (GPR_NAMES as readonly string[]).indexOf(name);
const segIndex = (name: string): number => (SEG_NAMES as readonly string[]).indexOf(name);

/** The value of register `name` (case-insensitive; `rflags` is accepted for eflags); throws EmuError E_REGISTER. */
export function readRegister(cpu: Cpu, name: string): bigint {
  const n = name.toLowerCase();
  const g = gprIndex(n);
  if (g >= 0) return cpu.regs[g]!;
  const s = segIndex(n);
  if (s >= 0) return BigInt(cpu.segs[s]!.selector);
  switch (n) {
    case 'rip': return cpu.rip;
    case 'eflags':
    case 'rflags': return BigInt(cpu.rflags >>> 0);
    case 'fs_base': return cpu.segs[4]!.base;
    case 'gs_base': return cpu.segs[5]!.base;
    case 'k_gs_base': return cpu.msr.kernelGsBase;
    case 'cr0': return cpu.cr0;
    case 'cr2': return cpu.cr2;
    case 'cr3': return cpu.cr3;
    case 'cr4': return cpu.cr4;
    case 'cr8': return cpu.cr8;
    case 'efer': return cpu.efer;
    case 'pkru': return BigInt(cpu.mmu.pkru >>> 0);
    default: throw new EmuError('E_REGISTER', `no register named '${name}' (known: ${REGISTER_NAMES.join(', ')})`);
  }
}

/** A segment cache for `selector` from the GDT as the debugger sees it, keeping `old` when the descriptor is unreadable. */
function reloadSegment(cpu: Cpu, selector: number, old: SegmentCache): SegmentCache {
  if ((selector & 0xfffc) === 0) return { selector, base: 0n, limit: 0, flags: 0 };
  const table = selector & 4 ? cpu.ldtr : cpu.gdtr;
  const index = selector & ~7;
  const r = index + 7 <= table.limit ? cpu.mmu.debugRead((table.base + BigInt(index)) & 0xffffffffffffffffn, 8) : null;
  if (!r?.ok) return { ...old, selector };
  const dv = new DataView(r.bytes.buffer);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & DESC.G) limit = ((limit << 12) | 0xfff) >>> 0;
  return { selector, base: BigInt(((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0), limit, flags: hi };
}

/** Sets register `name` to `value` the way a debugger does (throws EmuError E_REGISTER for unknown names or values that do not fit). */
export function writeRegister(cpu: Cpu, name: string, value: bigint): void {
  const n = name.toLowerCase();
  const fits = (bits: number): bigint => {
    if (value < 0n || value >> BigInt(bits)) throw new EmuError('E_REGISTER', `0x${value.toString(16)} does not fit ${bits}-bit register ${n}`);
    return value;
  };
  const g = gprIndex(n);
  if (g >= 0) {
    cpu.regs[g] = fits(64);
    return;
  }
  const s = segIndex(n);
  if (s >= 0) {
    const sel = Number(fits(16));
    const seg = reloadSegment(cpu, sel, cpu.segs[s]!);
    if (s >= 4) seg.base = cpu.segs[s]!.base; // FS/GS bases are MSRs in long mode
    cpu.segs[s] = seg;
    if (s === SEG_CS) cpu.cpl = sel & 3;
    return;
  }
  const paging = (): void => {
    cpu.updatePaging();
    cpu.mmu.tlb.flushAll();
  };
  switch (n) {
    case 'rip': cpu.rip = fits(64); return;
    case 'eflags':
    case 'rflags': cpu.rflags = (Number(fits(32)) | 2) >>> 0; return;
    case 'fs_base': cpu.segs[4] = { ...cpu.segs[4]!, base: fits(64) }; return;
    case 'gs_base': cpu.segs[5] = { ...cpu.segs[5]!, base: fits(64) }; return;
    case 'k_gs_base': cpu.msr.kernelGsBase = fits(64); return;
    case 'cr0': cpu.cr0 = fits(64); paging(); return;
    case 'cr2': cpu.cr2 = fits(64); return;
    case 'cr3': cpu.cr3 = fits(64); paging(); return;
    case 'cr4': cpu.cr4 = fits(64); paging(); return;
    case 'cr8': cpu.cr8 = fits(64); return;
    case 'efer': cpu.efer = fits(64); paging(); return;
    case 'pkru': cpu.mmu.pkru = Number(fits(32)); return;
    default: throw new EmuError('E_REGISTER', `no register named '${name}' (known: ${REGISTER_NAMES.join(', ')})`);
  }
}
