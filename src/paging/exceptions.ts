/**
 * Facts about x86 exceptions (Intel SDM vol. 3, 6.3, 6.13, Tables 6-4 and 6-5): vector names, the
 * classes of the double-fault rules, which vectors push an error code, what a fault during delivery
 * leads to, and the error codes a fault during delivery carries.
 */
import { hex } from './addr.js';

/** The vector pagewalk gives the triple fault (a shutdown, which has no vector). */
export const TRIPLE_FAULT = -1;

/** An exception's class for the double-fault rules (SDM Table 6-4). */
export type ExceptionClass = 'benign' | 'contributory' | 'page-fault' | 'double-fault';

const NAMES: Record<number, string> = {
  0: '#DE',
  1: '#DB',
  2: '#NMI',
  3: '#BP',
  4: '#OF',
  5: '#BR',
  6: '#UD',
  7: '#NM',
  8: '#DF',
  9: '#MF9',
  10: '#TS',
  11: '#NP',
  12: '#SS',
  13: '#GP',
  14: '#PF',
  16: '#MF',
  17: '#AC',
  18: '#MC',
  19: '#XM',
  20: '#VE',
  21: '#CP',
  28: '#HV',
  29: '#VC',
  30: '#SX',
};

/** The short name of a vector: '#PF', '#NMI', 'int 0x20'; 'triple fault' for {@link TRIPLE_FAULT}. */
export function vectorName(vector: number): string {
  if (vector === TRIPLE_FAULT) return 'triple fault';
  return NAMES[vector] ?? `int ${hex(vector)}`;
}

/** The class of a vector (SDM Table 6-4): #DE, #TS, #NP, #SS, #GP, #CP are contributory; #PF, #VE page faults. */
export function exceptionClass(vector: number): ExceptionClass {
  if (vector === 8) return 'double-fault';
  if (vector === 14 || vector === 20) return 'page-fault';
  if ([0, 10, 11, 12, 13, 21].includes(vector)) return 'contributory';
  return 'benign';
}

/** True when delivering `vector` (as an exception) pushes an error code. */
export function pushesErrorCode(vector: number): boolean {
  return [8, 10, 11, 12, 13, 14, 17, 21, 29, 30].includes(vector);
}

/**
 * What a fault `second` raised while delivering `first` leads to (SDM Table 6-5): a #DF, a triple
 * fault (any fault while delivering #DF), or the second exception handled on its own ('serial').
 */
export function faultDuringDelivery(first: number, second: number): 'double-fault' | 'triple-fault' | 'serial' {
  if (first === 8) return 'triple-fault';
  const a = exceptionClass(first);
  const b = exceptionClass(second);
  if (a === 'page-fault' && (b === 'page-fault' || b === 'contributory')) return 'double-fault';
  if (a === 'contributory' && b === 'contributory') return 'double-fault';
  return 'serial';
}

/** Error-code bit 0, EXT: the fault happened while delivering an event (SDM 6.13). */
export const EXT = 1;

/** The #GP/#NP error code that names IDT entry `vector` (IDT bit 1, EXT). */
export function idtErrorCode(vector: number): number {
  return (vector << 3) | 2 | EXT;
}

/** The #GP/#NP/#TS/#SS error code that names the GDT descriptor of `selector` (EXT). */
export function selectorErrorCode(selector: number): number {
  return (selector & 0xfffc) | EXT;
}
