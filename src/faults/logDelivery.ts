/**
 * Why delivering an interrupt or exception failed, from what a QEMU log shows: the vector being
 * delivered, the vector raised meanwhile (`check_exception old: X new Y`), the IDTR, GDTR, TR and
 * stack pointer of the register dump, and CR2 after the second fault (the next dump's). QEMU does
 * not log the second exception's own error code, so the reason is inferred: certain when the IDT
 * is too short for the gate, likely when CR2 points into the IDT, GDT, TSS or stack.
 */
import { hex } from '../paging/addr.js';
import { faultDuringDelivery } from '../paging/exceptions.js';
import type { CpuDump, TableDump } from './logDump.js';
import { shortName } from './logExceptions.js';

/** What is known of the moment a delivery failed. */
export interface DeliveryContext {
  /** The vector being delivered. */
  vector: number;
  /** The vector raised while delivering it. */
  raised: number;
  /** The register dump logged before the delivery (IDT, GDT, TR, EFER). */
  dump: CpuDump | null;
  /** RSP (or ESP) when the delivery began. */
  sp: bigint;
  /** CR2 after the second fault, when the log shows a later dump. */
  cr2After: bigint | null;
  /** CR2 before it (the first #PF's address, for a #PF being delivered). */
  cr2Before: bigint | null;
}

/** The inferred reason, and how sure it is. */
export interface DeliveryFailure {
  vector: number;
  raised: number;
  /** `certain`: the IDT limit rules the gate out; `likely`: CR2 points at a structure delivery reads or writes. */
  confidence: 'certain' | 'likely' | 'unknown';
  /** What went wrong, in a sentence. */
  why: string;
  /** The same in a few words, for one-line chains: `the IDT is empty`, `stack not mapped at 0x...`. */
  short: string;
  /** What the SDM makes of the pair: a double fault, a triple fault, or two exceptions handled one after the other. */
  rule: string;
  /** The address that faulted during delivery (CR2 after a #PF), when known. */
  address: bigint | null;
}

const within = (va: bigint, t: TableDump | undefined): boolean => t !== undefined && va >= t.base && va <= t.base + BigInt(t.limit);

/** Explains a failed delivery. */
export function explainDeliveryFailure(c: DeliveryContext): DeliveryFailure {
  const d = c.dump;
  const longMode = d?.efer !== undefined ? (d.efer & 0x400n) !== 0n : d?.width === 64;
  const gate = longMode ? 16 : 8;
  const name = shortName(c.vector);
  const raisedName = shortName(c.raised);
  const rule = ruleFor(c.vector, c.raised);
  const base = { vector: c.vector, raised: c.raised, rule };
  const idt = d?.idt;
  const need = c.vector * gate + gate - 1;
  if (idt && need > idt.limit) {
    const why =
      `the IDT (base ${hex(idt.base)}, limit ${hex(idt.limit)}) ends before the ${gate}-byte gate of vector ${hex(c.vector)} ` +
      `(it needs a limit of at least ${hex(need)})` +
      (idt.limit === 0 ? ': the IDT is empty, so lidt was given an empty table or never a real one' : '') +
      (c.raised === 13 ? `; QEMU raised #GP for it (error code ${hex(c.vector * 8 + 2)}, IDT gate ${hex(c.vector)})` : `; QEMU raised ${raisedName}`);
    const short = idt.limit === 0 ? 'the IDT is empty' : `the IDT is too short for vector ${hex(c.vector)}`;
    return { ...base, confidence: 'certain', why, short, address: null };
  }
  if (c.raised === 14) {
    const a = c.cr2After;
    if (a === null) {
      return {
        ...base,
        confidence: 'unknown',
        why: `a #PF while delivering ${name}: reading the IDT gate, the GDT, the TSS (RSP0 or IST), pushing the frame on the stack, or fetching the handler faulted (no later dump shows CR2)`,
        short: 'a #PF during delivery',
        address: null,
      };
    }
    const tr = d?.segments.tr;
    const sp = c.sp;
    let why: string;
    let short: string;
    if (within(a, idt)) {
      why = `reading the IDT gate at ${hex(a)} faulted: the IDT (base ${hex(idt!.base)}) is not mapped in the current tables`;
      short = `the IDT at ${hex(a)} is not mapped`;
    } else if (within(a, d?.gdt)) {
      why = `reading the GDT at ${hex(a)} (the handler's code segment descriptor) faulted: the GDT is not mapped in the current tables`;
      short = `the GDT at ${hex(a)} is not mapped`;
    } else if (tr && tr.limit > 0 && a >= tr.base && a <= tr.base + BigInt(tr.limit)) {
      why = `reading the TSS at ${hex(a)} (RSP0 or an IST stack pointer) faulted: the TSS is not mapped`;
      short = `the TSS at ${hex(a)} is not mapped`;
    } else if (a < sp && sp - a <= 0x100n) {
      why = `pushing the exception frame at ${hex(a)}, just below RSP ${hex(sp)}, faulted: the stack is not mapped (or not writable)`;
      short = `the stack at ${hex(a)} is not mapped`;
    } else if (a === c.cr2Before) {
      why = `CR2 still holds ${hex(a)}, the first fault's address: the second #PF hit the same address, or the log does not show the new CR2`;
      short = `a #PF during delivery`;
    } else {
      why = `a #PF at ${hex(a)} while delivering ${name}: most likely fetching the handler's first instruction there (the handler is not mapped), or a stack from the TSS/IST`;
      short = `a #PF at ${hex(a)}, likely the handler not mapped`;
    }
    return { ...base, confidence: 'likely', why, short, address: a };
  }
  const words: Record<number, string> = {
    10: `delivering ${name} needed a stack switch or task switch through a bad TSS (#TS)`,
    11: `the gate for vector ${hex(c.vector)}, or the handler's code segment, is not present (#NP: P=0)`,
    12: `the handler's stack segment is bad (#SS)`,
    13: `the gate for vector ${hex(c.vector)} is not a valid ${longMode ? '64-bit ' : ''}interrupt or trap gate, its selector does not name a code segment${longMode ? ', or the handler address is not canonical' : ''} (#GP)`,
  };
  const shorts: Record<number, string> = { 10: 'a bad TSS', 11: 'a gate or segment not present', 12: 'a bad handler stack', 13: 'a bad gate' };
  return {
    ...base,
    confidence: 'unknown',
    why: (words[c.raised] ?? `delivering ${name} raised ${raisedName}`) + '; QEMU does not log that exception\'s own error code',
    short: shorts[c.raised] ?? `${raisedName} during delivery`,
    address: null,
  };
}

/** The SDM's verdict on a second exception raised while delivering the first (Table 6-5). */
export function ruleFor(first: number, second: number): string {
  const a = shortName(first);
  const b = shortName(second);
  switch (faultDuringDelivery(first, second)) {
    case 'triple-fault':
      return `a fault (${b}) while delivering #DF is a triple fault: the CPU shuts down`;
    case 'double-fault':
      return `${b} while delivering ${a} is a double fault (SDM Table 6-5): the CPU raises #DF instead`;
    case 'serial':
      return `${b} while delivering ${a} is not a double fault: the CPU delivers ${b} on its own`;
  }
}
