/**
 * One instruction of the guest, read through its tables and decoded with iced-x86: its length and
 * text, the source register of a MOV to CR3, and the memory it accesses (with the registers of the
 * stop, the linear addresses it reads or writes).
 */
import { nasmFormatter } from '../asm/disassemble.js';
import { Code, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, MemorySizeExt, OpAccess, Register, RegisterExt, withFreed } from '../asm/iced.js';
import type { CpuState } from '../paging/cpu.js';
import { AddressError } from '../paging/addr.js';
import type { PagingTask } from '../paging/memory.js';
import type { PagingContext } from '../paging/mode.js';
import { CR0, EFER, has } from '../paging/registers.js';
import type { AccessKind } from '../paging/rights.js';
import { readVirtualTask } from '../paging/virtRead.js';

/** The longest x86 instruction. */
export const MAX_INSTRUCTION = 15;

/** A memory access an instruction makes. */
export interface MemoryAccess {
  /** The linear address, from the registers of the stop (segment bases of FS and GS included). */
  va: bigint;
  size: number;
  /** A read-modify-write is a write (the CPU checks the write first). */
  access: AccessKind;
}

/** A decoded instruction. */
export interface GuestInstruction {
  ip: bigint;
  length: number;
  bytes: Uint8Array;
  /** NASM syntax: `mov cr3, rax`. */
  text: string;
  /** For a MOV to CR3: the source register, lower case (rax, r8, eax). */
  cr3Source: string | null;
  /** For a MOV to CR3 decoded with registers: the value it moves. */
  cr3Value: bigint | null;
  /** LIDT: loads IDTR. */
  lidt: boolean;
  /** A MOV to CR0 (it may turn paging on or off). */
  cr0Write: boolean;
  /** HLT: a single step of it may wait for an interrupt that never comes. */
  halts: boolean;
  /** The vector an instruction raises by itself (INT3 3, INT n, INT1 1, UD2 6), else null. */
  raises: number | null;
  /** The memory it accesses, when registers were given. */
  memory: MemoryAccess[];
}

/** The code size the CPU decodes with: 64 in 64-bit code, 32 in compatibility or protected mode, 16 in real mode. */
export function codeBits(cpu: Pick<CpuState, 'cr0' | 'efer' | 'cs'>): 16 | 32 | 64 {
  if (!has(cpu.cr0, CR0.PE)) return 16;
  const flags = cpu.cs?.flags;
  const long = has(cpu.efer, EFER.LMA) || (has(cpu.efer, EFER.LME) && has(cpu.cr0, CR0.PG));
  if (flags === undefined) return long ? 64 : 32;
  // QEMU's packed flags: descriptor bits 8..23 in place: L is bit 21, D/B bit 22.
  if (long && (flags & 0x200000) !== 0) return 64;
  return (flags & 0x400000) !== 0 ? 32 : 16;
}

/** The value of general register `reg` (any width) from the stop's registers; null when unknown. */
export function registerValue(reg: Register, cpu: Pick<CpuState, 'gpr' | 'rip' | 'rsp'>, nextIp: bigint): bigint | null {
  if (reg === Register.None) return 0n;
  if (RegisterExt.isIP(reg)) return nextIp;
  if (!RegisterExt.isGPR(reg)) return null;
  const full = RegisterExt.fullRegister(reg);
  const name = Register[full]!.toLowerCase();
  const value = name === 'rsp' ? cpu.rsp : cpu.gpr[name];
  if (value === undefined) return null;
  const size = RegisterExt.size(reg);
  // AH, CH, DH, BH: bits 15:8.
  if (RegisterExt.isGPR8(reg) && reg >= Register.AH && reg <= Register.BH) return (value >> 8n) & 0xffn;
  return BigInt.asUintN(size * 8, value);
}

/**
 * Decodes the instruction at the start of `bytes` (placed at `ip`), or returns null when the bytes
 * do not hold a whole valid instruction. With `cpu`, its memory accesses are computed.
 */
export function decodeInstruction(bytes: Uint8Array, bits: 16 | 32 | 64, ip: bigint, cpu?: Pick<CpuState, 'gpr' | 'rip' | 'rsp' | 'fs' | 'gs'>): GuestInstruction | null {
  if (bytes.length === 0) return null;
  return withFreed((keep) => {
    const decoder = keep(new Decoder(bits, bytes.subarray(0, MAX_INSTRUCTION), DecoderOptions.None));
    decoder.ip = ip;
    const ins = keep(new Instruction());
    decoder.decodeOut(ins);
    if (ins.isInvalid || ins.length > bytes.length) return null;
    const isCr3 = (ins.code === Code.Mov_cr_r64 || ins.code === Code.Mov_cr_r32) && ins.op0Register === Register.CR3;
    const memory: MemoryAccess[] = [];
    if (cpu) {
      const factory = keep(new InstructionInfoFactory());
      const info = keep(factory.info(ins));
      for (const m of info.usedMemory()) {
        keep(m);
        const base = registerValue(m.base, cpu, ins.nextIP);
        const index = registerValue(m.index, cpu, ins.nextIP);
        if (base === null || index === null) continue;
        const segment = m.segment === Register.FS ? (cpu.fs?.base ?? 0n) : m.segment === Register.GS ? (cpu.gs?.base ?? 0n) : 0n;
        const width = bits === 64 ? 64 : 32;
        const va = BigInt.asUintN(width, segment + base + index * BigInt(m.scale) + m.displacement);
        const access: AccessKind | null =
          m.access === OpAccess.Write || m.access === OpAccess.CondWrite || m.access === OpAccess.ReadWrite || m.access === OpAccess.ReadCondWrite
            ? 'write'
            : m.access === OpAccess.Read || m.access === OpAccess.CondRead
              ? 'read'
              : null;
        if (access) memory.push({ va, size: MemorySizeExt.size(m.memorySize), access });
      }
    }
    const text = keep(nasmFormatter()).format(ins);
    return {
      ip,
      length: ins.length,
      bytes: bytes.slice(0, ins.length),
      text,
      cr3Source: isCr3 ? Register[ins.op1Register]!.toLowerCase() : null,
      cr3Value: isCr3 && cpu ? registerValue(ins.op1Register, cpu, ins.nextIP) : null,
      lidt: ins.code === Code.Lidt_m1664 || ins.code === Code.Lidt_m1632 || ins.code === Code.Lidt_m1632_16,
      cr0Write: (ins.code === Code.Mov_cr_r64 || ins.code === Code.Mov_cr_r32) && ins.op0Register === Register.CR0,
      halts: ins.code === Code.Hlt,
      raises: ins.code === Code.Int3 ? 3 : ins.code === Code.Int_imm8 ? ins.immediate8 : ins.code === Code.Int1 ? 1 : ins.code === Code.Ud2 ? 6 : null,
      memory,
    };
  });
}

/**
 * The bytes of the instruction at `va` as the CPU fetches them through `ctx` (a fetch at CPL 3 when
 * `user`): 15 bytes, or fewer where the next page faults; empty when the first byte cannot be fetched.
 */
export function* readCodeTask(ctx: PagingContext, va: bigint, user = false): PagingTask<Uint8Array> {
  const access = { kind: 'exec', user } as const;
  const inPage = 4096 - Number(va % 4096n);
  try {
    const first = yield* readVirtualTask(ctx, va, Math.min(MAX_INSTRUCTION, inPage), access);
    if (!first.ok) return new Uint8Array(0);
    if (inPage >= MAX_INSTRUCTION) return first.bytes;
    const rest = yield* readVirtualTask(ctx, va + BigInt(inPage), MAX_INSTRUCTION - inPage, access);
    if (!rest.ok) return first.bytes;
    const out = new Uint8Array(MAX_INSTRUCTION);
    out.set(first.bytes, 0);
    out.set(rest.bytes, inPage);
    return out;
  } catch (e) {
    // An address the mode cannot express (past 4 GiB outside long mode) holds no code.
    if (e instanceof AddressError) return new Uint8Array(0);
    throw e;
  }
}
