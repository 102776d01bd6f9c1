/**
 * The CPU: architectural state, the fetch-decode-execute step, operand and memory access through
 * the MMU, and raising exceptions with the SDM's double-fault rules. Instruction semantics live
 * in the cpu*.ts files by concern; exception delivery in cpuDelivery.ts. Exceptions are precise:
 * an instruction that faults leaves registers and flags as they were before it.
 */
import { M64, isCanonical } from './bits.js';
import { DecodeCache, decode, disassemble, OP_GPR, OP_IMM, OP_MEM, type Insn, type Operand } from './cpuDecode.js';
import { deliver } from './cpuDelivery.js';
import { resolveHandler } from './cpuDispatch.js';
import { FL, F_STACK, RSP, flatSegment, type CpuRegisters, type SegmentCache, type TableRegister } from './cpuState.js';
import { CpuFault, VEC, escalate, remembered } from './exceptions.js';
import type { CpuFeatures } from './features.js';
import { Mmu } from './mmu.js';
import { ACC_AC, ACC_EXEC, ACC_IMPLICIT, ACC_READ, ACC_USER, ACC_WRITE } from './mmuBits.js';
import type { PhysicalMemory } from './physMemory.js';
import type { EmuLog } from './qemuLog.js';
import type { PortBus } from './serial.js';

/** What one step did. */
export type StepOutcome =
  /** An instruction executed, or an exception was delivered. */
  | 'ok'
  /** The CPU is halted (HLT; no interrupt source exists to wake it). */
  | 'halted'
  /** Delivering an exception failed while delivering #DF: the processor shut down. */
  | 'triple-fault';

/** Called for every data access the CPU makes (not fetches, not page walks): for watchpoints. */
export type AccessWatcher = (va: bigint, size: number, write: boolean) => void;

const M32 = 0xffffffffn;

/**
 * How the TLB behaves on MOV to CR3: 'hardware' keeps global translations (and, with PCIDs, the
 * other PCIDs' and, with the no-flush bit, the current one's); 'qemu-tcg' drops everything, as
 * QEMU 7.2's TCG does (both are architecturally allowed: a TLB may drop entries at any time).
 */
export type TlbModel = 'hardware' | 'qemu-tcg';

/** The emulated x86-64 CPU (one logical processor, long mode). */
export class Cpu implements CpuRegisters {
  /** RAX..R15 by encoding number, unsigned 64-bit (the array is replaced when an instruction faults). */
  regs: bigint[] = new Array<bigint>(16).fill(0n);
  rip = 0n;
  /** RFLAGS as a number (bit 1 always set). */
  rflags: number = FL.FIXED;
  /** ES, CS, SS, DS, FS, GS with their hidden parts (FS/GS bases are the MSRs). */
  segs: SegmentCache[] = [0, 1, 2, 3, 4, 5].map(() => flatSegment(0, 0));
  /** LDTR and TR start as QEMU's reset values. */
  ldtr: SegmentCache = { selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 };
  tr: SegmentCache = { selector: 0, base: 0n, limit: 0xffff, flags: 0x8b00 };
  gdtr: TableRegister = { base: 0n, limit: 0xffff };
  idtr: TableRegister = { base: 0n, limit: 0xffff };
  /** Control registers: write them through cpuControl.ts (or updatePaging() after a debugger write). */
  cr0 = 0x60000010n;
  cr2 = 0n;
  cr3 = 0n;
  cr4 = 0n;
  cr8 = 0n;
  efer = 0n;
  /** MSRs other than EFER and the segment bases. */
  msr = { star: 0n, lstar: 0n, cstar: 0n, fmask: 0n, kernelGsBase: 0n, tscAux: 0n, pat: 0x0007040600070406n, apicBase: 0xfee00900n, miscEnable: 1n };
  /** Current privilege level (CS.RPL once loaded). */
  cpl = 0;
  /** HLT executed; nothing in this machine raises an interrupt to wake it. */
  halted = false;
  /** Interrupts inhibited for one instruction after STI or MOV SS (QEMU's II). */
  inhibitIrq = false;
  /** Instructions executed (faulting ones included); also the time-stamp counter. */
  instructions = 0;
  /** The exception being delivered, for the double-fault rules (-1: none). */
  oldException = -1;
  /** During execution: where RIP goes when the instruction completes (branches change it). */
  nextRip = 0n;
  readonly mmu: Mmu;
  readonly icache = new DecodeCache();
  /** What MOV to CR3 flushes. */
  tlbModel: TlbModel = 'hardware';
  /** Data-access hook for watchpoints (null: none, the fast path). */
  watcher: AccessWatcher | null = null;
  private canonBits = 48;
  /** A REP string instruction stopped after its per-step iteration budget and will continue at the same RIP. */
  repContinues = false;
  // Registers and flags as they were before the current instruction (restored when it faults).
  private savedRegs: bigint[] = [];
  private savedFlags = 0;
  // Physical addresses of the last read-modify-write operand (second page when it crosses one).
  private rmwPa1 = 0;
  private rmwPa2 = 0;
  private rmwN1 = 0;

  constructor(
    readonly features: CpuFeatures,
    readonly mem: PhysicalMemory,
    readonly ports: PortBus,
    readonly log: EmuLog,
  ) {
    this.mmu = new Mmu(mem, features);
  }

  /** Re-reads CR0, CR3, CR4 and EFER into the MMU (after any of them changed). */
  updatePaging(): void {
    this.mmu.setControl(this.cr0, this.cr3, this.cr4, this.efer);
    this.canonBits = this.mmu.linearBits;
  }

  // ---------------------------------------------------------------- flags

  /** Replaces the six status flags with `bits` (a mask of CF, PF, AF, ZF, SF, OF). */
  setStatus(bits: number): void {
    this.rflags = (this.rflags & ~0x8d5) | bits;
  }

  /** True when RFLAGS has `bit`. */
  flag(bit: number): boolean {
    return (this.rflags & bit) !== 0;
  }

  /** Evaluates an iced-x86 ConditionCode against RFLAGS. */
  cond(cc: number): boolean {
    const f = this.rflags;
    const cf = (f & FL.CF) !== 0;
    const zf = (f & FL.ZF) !== 0;
    const sf = (f & FL.SF) !== 0;
    const of = (f & FL.OF) !== 0;
    const pf = (f & FL.PF) !== 0;
    switch (cc) {
      case 1: return of;
      case 2: return !of;
      case 3: return cf;
      case 4: return !cf;
      case 5: return zf;
      case 6: return !zf;
      case 7: return cf || zf;
      case 8: return !cf && !zf;
      case 9: return sf;
      case 10: return !sf;
      case 11: return pf;
      case 12: return !pf;
      case 13: return sf !== of;
      case 14: return sf === of;
      case 15: return zf || sf !== of;
      case 16: return !zf && sf === of;
      default: throw new Error(`condition code ${cc}`);
    }
  }

  // ---------------------------------------------------------------- registers and operands

  /** The value of a general-register operand. */
  getReg(o: Operand): bigint {
    const v = this.regs[o.reg]!;
    switch (o.size) {
      case 8: return v;
      case 4: return v & M32;
      case 2: return v & 0xffffn;
      default: return o.hi ? (v >> 8n) & 0xffn : v & 0xffn;
    }
  }

  /** Writes a general-register operand: 32-bit writes zero the upper half, 8- and 16-bit writes merge. */
  setReg(o: Operand, value: bigint): void {
    const r = o.reg;
    switch (o.size) {
      case 8: this.regs[r] = value & M64; return;
      case 4: this.regs[r] = value & M32; return;
      case 2: this.regs[r] = (this.regs[r]! & ~0xffffn) | (value & 0xffffn); return;
      default:
        this.regs[r] = o.hi ? (this.regs[r]! & ~0xff00n) | ((value & 0xffn) << 8n) : (this.regs[r]! & ~0xffn) | (value & 0xffn);
    }
  }

  /** The effective (linear) address of the instruction's memory operand: FS/GS base included unless `offsetOnly` (LEA). */
  ea(i: Insn, offsetOnly = false): bigint {
    const m = i.mem!;
    let a = m.disp;
    if (m.base >= 0) a += m.base === 16 ? this.rip + BigInt(i.len) : this.regs[m.base]!;
    if (m.index >= 0) a += this.regs[m.index]! * m.scale;
    a &= m.addr32 ? M32 : M64;
    if (m.seg >= 0 && !offsetOnly) a = (a + this.segs[m.seg]!.base) & M64;
    return a;
  }

  /** Reads operand `n` (immediates masked to their size). */
  readOp(i: Insn, n: number): bigint {
    const o = i.ops[n]!;
    switch (o.kind) {
      case OP_GPR: return this.getReg(o);
      case OP_IMM: return o.imm & (o.size === 8 ? M64 : (1n << BigInt(o.size * 8)) - 1n);
      case OP_MEM: return this.read(this.ea(i), o.size, i.mem!.stack ? F_STACK : 0);
      default: throw new Error(`operand ${n} of kind ${o.kind} is not readable here`);
    }
  }

  /** Writes operand `n` (a register or memory). */
  writeOp(i: Insn, n: number, value: bigint): void {
    const o = i.ops[n]!;
    if (o.kind === OP_GPR) this.setReg(o, value);
    else if (o.kind === OP_MEM) this.write(this.ea(i), o.size, value, i.mem!.stack ? F_STACK : 0);
    else throw new Error(`operand ${n} of kind ${o.kind} is not writable`);
  }

  /** Reads operand 0 of a read-modify-write instruction (memory is checked for writing first, as hardware does). */
  readDest(i: Insn): bigint {
    const o = i.ops[0]!;
    if (o.kind === OP_GPR) return this.getReg(o);
    return this.rmwRead(this.ea(i), o.size, i.mem!.stack ? F_STACK : 0);
  }

  /** Writes operand 0 of a read-modify-write instruction. */
  writeDest(i: Insn, value: bigint): void {
    const o = i.ops[0]!;
    if (o.kind === OP_GPR) this.setReg(o, value);
    else this.rmwWrite(this.ea(i), o.size, value);
  }

  // ---------------------------------------------------------------- memory

  /** True when `va` is canonical in the current paging mode. */
  canonical(va: bigint): boolean {
    return isCanonical(va, this.canonBits);
  }

  private checkCanonical(va: bigint, size: number, flags: number): void {
    if (!isCanonical(va, this.canonBits) || !isCanonical((va + BigInt(size - 1)) & M64, this.canonBits)) {
      throw new CpuFault((flags & F_STACK) !== 0 ? VEC.SS : VEC.GP, 0);
    }
  }

  private accessBits(kind: number, flags: number): number {
    const implicit = flags & ACC_IMPLICIT;
    return kind | implicit | (this.cpl === 3 && !implicit ? ACC_USER : 0) | (this.rflags & FL.AC ? ACC_AC : 0);
  }

  /** Translates both pages of an access into rmwPa1/rmwPa2 (every check before any byte moves). */
  private translateSpan(va: bigint, size: number, acc: number): void {
    const off = Number(va & 0xfffn);
    this.rmwPa1 = this.mmu.translate(va, acc);
    if (off + size <= 4096) {
      this.rmwN1 = size;
      return;
    }
    this.rmwN1 = 4096 - off;
    this.rmwPa2 = this.mmu.translate((va + BigInt(this.rmwN1)) & M64, acc);
  }

  private readSpan(size: number): bigint {
    if (this.rmwN1 === size) return this.mem.readLE(this.rmwPa1, size);
    const n1 = this.rmwN1;
    return this.mem.readLE(this.rmwPa1, n1) | (this.mem.readLE(this.rmwPa2, size - n1) << BigInt(8 * n1));
  }

  private writeSpan(size: number, value: bigint): void {
    if (this.rmwN1 === size) {
      this.mem.writeLE(this.rmwPa1, size, value);
      return;
    }
    const n1 = this.rmwN1;
    this.mem.writeLE(this.rmwPa1, n1, value);
    this.mem.writeLE(this.rmwPa2, size - n1, value >> BigInt(8 * n1));
  }

  /** A data read of `size` bytes at `va` (F_IMPLICIT / F_STACK in `flags`). */
  read(va: bigint, size: number, flags = 0): bigint {
    this.checkCanonical(va, size, flags);
    const acc = this.accessBits(ACC_READ, flags);
    let v: bigint;
    if (Number(va & 0xfffn) + size <= 4096) v = this.mem.readLE(this.mmu.translate(va, acc), size);
    else {
      this.translateSpan(va, size, acc);
      v = this.readSpan(size);
    }
    if (this.watcher) this.watcher(va, size, false);
    return v;
  }

  /** A data write of the low `size` bytes of `value` at `va`; both pages are checked before anything is written. */
  write(va: bigint, size: number, value: bigint, flags = 0): void {
    this.checkCanonical(va, size, flags);
    this.translateSpan(va, size, this.accessBits(ACC_WRITE, flags));
    this.writeSpan(size, value);
    if (this.watcher) this.watcher(va, size, true);
  }

  /** The read half of a read-modify-write: translated for writing, so a read-only page faults with W=1 here. */
  rmwRead(va: bigint, size: number, flags = 0): bigint {
    this.checkCanonical(va, size, flags);
    this.translateSpan(va, size, this.accessBits(ACC_WRITE, flags));
    const v = this.readSpan(size);
    if (this.watcher) this.watcher(va, size, false);
    return v;
  }

  /** The write half of a read-modify-write, to the place `rmwRead` translated. */
  rmwWrite(va: bigint, size: number, value: bigint): void {
    this.writeSpan(size, value);
    if (this.watcher) this.watcher(va, size, true);
  }

  /** Pushes `size` bytes (8 or 2) on the stack. */
  push(value: bigint, size = 8): void {
    const rsp = (this.regs[RSP]! - BigInt(size)) & M64;
    this.write(rsp, size, value, F_STACK);
    this.regs[RSP] = rsp;
  }

  /** Pops `size` bytes (8 or 2) from the stack. */
  pop(size = 8): bigint {
    const rsp = this.regs[RSP]!;
    const v = this.read(rsp, size, F_STACK);
    this.regs[RSP] = (rsp + BigInt(size)) & M64;
    return v;
  }

  // ---------------------------------------------------------------- execution

  /** Fetches and decodes the instruction at RIP through the MMU (exec accesses), page by page. */
  fetch(): Insn {
    const rip = this.rip;
    if (!isCanonical(rip, this.canonBits)) throw new CpuFault(VEC.GP, 0);
    const acc = ACC_EXEC | (this.cpl === 3 ? ACC_USER : 0);
    const pa = this.mmu.translate(rip, acc);
    const avail = 4096 - (pa % 4096);
    const hit = this.icache.get(pa);
    if (hit) {
      if (hit.len <= avail) {
        if (this.sameBytes(pa, hit.bytes, 0, hit.len)) return hit;
      } else {
        const pa2 = this.fetchNextPage(rip, avail, acc);
        if (this.sameBytes(pa, hit.bytes, 0, avail) && this.sameBytes(pa2, hit.bytes, avail, hit.len - avail)) return hit;
      }
    }
    const buf = new Uint8Array(15);
    const n = Math.min(15, avail);
    buf.set(this.mem.read(pa, n));
    let r = decode(buf.subarray(0, n), resolveHandler);
    if (r === 'more' && n < 15) {
      // The instruction continues on the next page: only now is that page fetched (and may fault).
      buf.set(this.mem.read(this.fetchNextPage(rip, avail, acc), 15 - n), n);
      r = decode(buf, resolveHandler);
    }
    if (r === 'more' || r === 'invalid') throw new CpuFault(VEC.UD);
    this.icache.set(pa, r);
    return r;
  }

  private fetchNextPage(rip: bigint, avail: number, acc: number): number {
    const va = (rip + BigInt(avail)) & M64;
    if (!isCanonical(va, this.canonBits)) throw new CpuFault(VEC.GP, 0);
    return this.mmu.translate(va, acc);
  }

  private sameBytes(pa: number, bytes: Uint8Array, from: number, n: number): boolean {
    for (let k = 0; k < n; k++) if (this.mem.read8(pa + k) !== bytes[from + k]) return false;
    return true;
  }

  /** Marks registers `which` and the flags as final even if the instruction faults later (REP iterations). */
  checkpoint(which: readonly number[]): void {
    for (const r of which) this.savedRegs[r] = this.regs[r]!;
    this.savedFlags = this.rflags;
  }

  /** Executes one instruction, or delivers the exception it raises. */
  step(): StepOutcome {
    if (this.halted) return 'halted';
    this.savedRegs = this.regs.slice();
    this.savedFlags = this.rflags;
    this.repContinues = false;
    const inhibit = this.inhibitIrq;
    const trap = (this.rflags & FL.TF) !== 0;
    // RF lasts until an instruction completes (IRET may set it again from its frame).
    this.rflags &= ~FL.RF;
    try {
      const i = this.fetch();
      this.nextRip = (this.rip + BigInt(i.len)) & M64;
      i.exec(this, i);
      this.rip = this.nextRip;
      if (inhibit) this.inhibitIrq = false;
      this.instructions++;
      // Single-step: TF at the start of an instruction traps (#DB) once it completes.
      if (trap && !this.repContinues) return this.raise(new CpuFault(VEC.DB));
      return this.halted ? 'halted' : 'ok';
    } catch (e) {
      this.regs = this.savedRegs;
      this.rflags = this.savedFlags;
      if (!(e instanceof CpuFault)) throw e;
      this.instructions++;
      return this.raise(e);
    }
  }

  /**
   * Raises exception `fault` at the current instruction and delivers it; an exception during
   * delivery goes through the double-fault rules (#DF, then triple fault).
   */
  raise(fault: CpuFault): StepOutcome {
    let vector = fault.vector;
    let code = fault.errorCode;
    if (vector === VEC.PF) this.cr2 = fault.address;
    for (;;) {
      this.log.checkException(this.oldException, vector);
      const esc = escalate(this.oldException, vector);
      if (esc.kind === 'triple-fault') {
        this.log.tripleFault();
        return 'triple-fault';
      }
      if (esc.kind === 'double-fault') {
        vector = VEC.DF;
        code = 0;
      }
      if (remembered(vector)) this.oldException = vector;
      try {
        this.rip = deliver(this, vector, code, false, this.rip);
        this.oldException = -1;
        return 'ok';
      } catch (e) {
        if (!(e instanceof CpuFault)) throw e;
        vector = e.vector;
        code = e.errorCode;
        if (vector === VEC.PF) this.cr2 = e.address;
      }
    }
  }

  /** Logs an instruction the emulator does not implement and raises #UD for it, as hardware would for an unknown opcode. */
  unsupported(i: Insn): never {
    this.log.unimp(
      `pagewalk-emu: unsupported instruction at ${this.segs[1]!.selector.toString(16).padStart(4, '0')}:${this.rip.toString(16).padStart(16, '0')}: ` +
        `${disassemble(i.bytes, this.rip)} (${[...i.bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')}), raising #UD`,
    );
    throw new CpuFault(VEC.UD);
  }
}
