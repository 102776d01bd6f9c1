/**
 * What the vectors in a QEMU log mean, in words: exception names, which ones push an error code,
 * selector error codes (#TS, #NP, #SS, #GP: EXT, IDT, TI, index; SDM vol. 3, 6.13), and the usual
 * reasons behind each exception a kernel developer meets.
 */
import { hex } from '../paging/addr.js';
import { pushesErrorCode, vectorName } from '../paging/exceptions.js';

/** How an entry of the log came to be delivered. */
export type DeliveryKind =
  /** Raised by the CPU (QEMU logged `check_exception` before it). */
  | 'exception'
  /** `int n`, `int3`, `into` (`i=1`). */
  | 'software-interrupt'
  /** An interrupt from a device (QEMU logged `Servicing hardware INT`, or a vector >= 32 with `i=0`). */
  | 'hardware-interrupt'
  /** Vector 2 from outside. */
  | 'nmi';

/** A decoded selector error code. */
export interface SelectorErrorCode {
  code: number;
  /** Bit 0: the fault happened while delivering an event from outside the program (an interrupt or an earlier exception). */
  ext: boolean;
  /** Bit 1: the index names an IDT gate. */
  idt: boolean;
  /** Bit 2 (when IDT=0): the index names an LDT descriptor, else a GDT one. */
  ti: boolean;
  /** Bits 15:3: the descriptor (or gate) index. */
  index: number;
  table: 'IDT' | 'GDT' | 'LDT';
  /** The selector the code names (index * 8 | TI), for the GDT and LDT. */
  selector: number;
  /** One line: `IDT gate 0xe (#PF)`, `GDT selector 0x18 (index 3)`, `no selector (0)`. */
  summary: string;
}

/** Vectors whose error code names a selector or gate. */
export const SELECTOR_VECTORS: ReadonlySet<number> = new Set([10, 11, 12, 13, 17]);

const LONG_NAMES: Record<number, string> = {
  0: 'divide error',
  1: 'debug exception',
  2: 'non-maskable interrupt',
  3: 'breakpoint',
  4: 'overflow',
  5: 'BOUND range exceeded',
  6: 'invalid opcode',
  7: 'device not available',
  8: 'double fault',
  9: 'coprocessor segment overrun',
  10: 'invalid TSS',
  11: 'segment not present',
  12: 'stack-segment fault',
  13: 'general protection fault',
  14: 'page fault',
  16: 'x87 floating-point error',
  17: 'alignment check',
  18: 'machine check',
  19: 'SIMD floating-point exception',
  20: 'virtualization exception',
  21: 'control protection exception',
  28: 'hypervisor injection exception',
  29: 'VMM communication exception',
  30: 'security exception',
};

/** The short name: `#PF`, `#GP`, `int 0x80`. */
export function shortName(vector: number): string {
  return vectorName(vector);
}

/** The name in words: `page fault`, `interrupt 0x20`. */
export function longName(vector: number): string {
  return LONG_NAMES[vector] ?? (vector < 32 ? `reserved exception ${hex(vector)}` : `interrupt ${hex(vector)}`);
}

/** True when the CPU pushes an error code for this vector delivered as an exception. */
export function hasErrorCode(vector: number): boolean {
  return pushesErrorCode(vector);
}

/** Decodes a #TS/#NP/#SS/#GP/#AC-style selector error code. */
export function decodeSelectorErrorCode(code: number): SelectorErrorCode {
  const ext = (code & 1) !== 0;
  const idt = (code & 2) !== 0;
  const ti = !idt && (code & 4) !== 0;
  const index = (code >>> 3) & 0x1fff;
  const table = idt ? 'IDT' : ti ? 'LDT' : 'GDT';
  const selector = (index << 3) | (ti ? 4 : 0);
  let summary: string;
  if ((code & 0xffff) === 0) summary = 'no selector (0)';
  else if (idt) summary = `IDT gate ${hex(index)} (${shortName(index)})`;
  else summary = `${table} selector ${hex(selector)} (index ${index})`;
  if (ext) summary += ', EXT=1: raised while delivering an interrupt or an earlier exception';
  return { code, ext, idt, ti, index, table, selector, summary };
}

/** Why a kernel usually sees this exception, in a sentence or two (without the error code). */
export function usualCauses(vector: number, softwareInt: boolean): string {
  switch (vector) {
    case 0:
      return 'div or idiv by zero, or a quotient too large for its register.';
    case 1:
      return 'a debug trap: single-step (TF), a hardware breakpoint (DR0-DR3), or the int1 instruction.';
    case 3:
      return softwareInt ? 'the int3 instruction (a software breakpoint, 0xcc).' : 'a breakpoint exception.';
    case 6:
      return 'an instruction the CPU does not know: ud2, an instruction the CPU model lacks (QEMU -cpu), executing data, or a jump into the middle of an instruction.';
    case 7:
      return 'an x87/SSE instruction with CR0.TS or CR0.EM set (FPU not enabled, or lazy FPU switching).';
    case 8:
      return 'a second fault while the CPU was delivering the first (a #PF or contributory exception): the first handler could not be reached.';
    case 10:
      return 'a task switch or stack switch found a bad TSS.';
    case 11:
      return 'a segment or gate descriptor with P=0 (an IDT gate never filled in, or a descriptor not marked present).';
    case 12:
      return 'a stack access beyond SS limits, a non-canonical stack address, or loading SS with a non-present segment.';
    case 13:
      return 'a non-canonical address, a privileged instruction at CPL > 0, reserved bits written to a control register or MSR, a bad segment selector, or an IDT gate that is not a valid interrupt or trap gate.';
    case 14:
      return 'the page walk for the address in CR2 failed: see the error code.';
    case 16:
      return 'an unmasked x87 floating-point exception.';
    case 17:
      return 'an unaligned access with CR0.AM and EFLAGS.AC set at CPL 3.';
    case 18:
      return 'a machine check (hardware error, or injected by QEMU).';
    case 19:
      return 'an unmasked SSE floating-point exception.';
    case 21:
      return 'a control-flow enforcement (CET) violation.';
    default:
      return vector >= 32 ? 'an interrupt vector: a device IRQ or an int instruction.' : '';
  }
}
