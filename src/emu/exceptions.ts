/**
 * Exceptions as the hardware defines them (Intel SDM vol. 3, chapter 6): the vectors, which push an
 * error code, which are faults, the benign / contributory / page-fault classes and the double-fault
 * rules that turn a second exception into #DF and a third into a triple fault.
 */

/** Exception vectors the emulator raises. */
export const VEC = {
  DE: 0,
  DB: 1,
  BP: 3,
  OF: 4,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  AC: 17,
} as const;

const NAMES: Readonly<Record<number, string>> = {
  0: '#DE', 1: '#DB', 2: 'NMI', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF', 10: '#TS',
  11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', 18: '#MC', 19: '#XM', 20: '#VE', 21: '#CP',
};

/** The mnemonic of `vector` (#PF, #GP, ...), or `int 0xNN` for a plain interrupt vector. */
export function vectorName(vector: number): string {
  return NAMES[vector] ?? `int 0x${vector.toString(16).padStart(2, '0')}`;
}

/** A guest exception raised while executing or delivering: the CPU catches it and delivers it through the IDT. */
export class CpuFault extends Error {
  constructor(
    /** The vector (0..31). */
    readonly vector: number,
    /** The error code pushed for vectors that have one (0 otherwise). */
    readonly errorCode = 0,
    /** For #PF: the linear address that goes to CR2. */
    readonly address = 0n,
  ) {
    super(`${vectorName(vector)} error code 0x${errorCode.toString(16)}${vector === VEC.PF ? ` at 0x${address.toString(16)}` : ''}`);
    this.name = 'CpuFault';
  }
}

/** True when `vector` pushes an error code (SDM table 6-1: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX). */
export function hasErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17 || vector === 21 || vector === 29 || vector === 30;
}

/**
 * True when `vector` is a fault (the saved RIP points at the faulting instruction and the pushed
 * RFLAGS has RF set): every exception but #DB (handled as a trap here), #BP and #OF (traps),
 * #DF and #MC (aborts).
 */
export function isFault(vector: number): boolean {
  return vector < 32 && vector !== 1 && vector !== 3 && vector !== 4 && vector !== 8 && vector !== 18;
}

/** The double-fault class of an exception (SDM table 6-4). */
export type ExceptionClass = 'benign' | 'contributory' | 'page-fault';

/** The class of `vector`: #DE, #TS, #NP, #SS and #GP are contributory, #PF is its own class, the rest benign. */
export function exceptionClass(vector: number): ExceptionClass {
  if (vector === VEC.DE || (vector >= VEC.TS && vector <= VEC.GP)) return 'contributory';
  return vector === VEC.PF ? 'page-fault' : 'benign';
}

/** What happens when `next` is raised while `previous` (-1: none) is being delivered. */
export type Escalation =
  /** Deliver `next` as it is. */
  | { kind: 'deliver'; vector: number }
  /** Deliver #DF (error code 0) instead. */
  | { kind: 'double-fault' }
  /** A fault while delivering #DF: the processor shuts down. */
  | { kind: 'triple-fault' };

/**
 * The SDM's rules for an exception raised during the delivery of another (table 6-5): any
 * exception during #DF delivery is a triple fault; contributory after contributory, and
 * contributory or #PF after #PF, become #DF; everything else is delivered serially.
 */
export function escalate(previous: number, next: number): Escalation {
  if (previous === VEC.DF) return { kind: 'triple-fault' };
  const prev = previous < 0 ? 'benign' : exceptionClass(previous);
  const cls = exceptionClass(next);
  if ((prev === 'contributory' && cls === 'contributory') || (prev === 'page-fault' && cls !== 'benign')) {
    return { kind: 'double-fault' };
  }
  return { kind: 'deliver', vector: next };
}

/** True when an exception of `vector` must be remembered for the double-fault rules (it is not benign, or it is #DF). */
export function remembered(vector: number): boolean {
  return vector === VEC.DF || exceptionClass(vector) !== 'benign';
}
