/**
 * Building the page-fault error code an access would raise (SDM vol. 3, 4.7).
 * Decoding and wording live in `src/faults`.
 */
import type { PagingContext } from './mode.js';

/** Page-fault error code bits. */
export const PF = {
  /** 0: the page was not present; 1: a protection or reserved-bit violation. */
  P: 0x1,
  /** The access was a write. */
  W: 0x2,
  /** The access was a user-mode (CPL 3) access. */
  U: 0x4,
  /** A reserved bit was set in a paging-structure entry. */
  RSVD: 0x8,
  /** The access was an instruction fetch (reported only with SMEP, or PAE/long paging with NXE). */
  ID: 0x10,
  /** A protection-key violation. */
  PK: 0x20,
  /** A shadow-stack access. */
  SS: 0x40,
  /** HLAT paging. */
  HLAT: 0x80,
  /** An SGX-specific access-control violation. */
  SGX: 0x8000,
} as const;

/** The facts a page-fault error code encodes. */
export interface ErrorCodeParts {
  /** The translation reached a present leaf (or a reserved bit stopped it). */
  present: boolean;
  write: boolean;
  user: boolean;
  fetch: boolean;
  rsvd?: boolean;
  pk?: boolean;
  shadowStack?: boolean;
}

/** The error code the CPU pushes for a #PF with these parts under `ctx`. RSVD implies P, as the SDM says. */
export function pageFaultErrorCode(parts: ErrorCodeParts, ctx: Pick<PagingContext, 'smep' | 'nxe'>): number {
  let code = 0;
  if (parts.present || parts.rsvd) code |= PF.P;
  if (parts.write) code |= PF.W;
  if (parts.user) code |= PF.U;
  if (parts.rsvd) code |= PF.RSVD;
  if (parts.fetch && (ctx.smep || ctx.nxe)) code |= PF.ID;
  if (parts.pk) code |= PF.PK;
  if (parts.shadowStack) code |= PF.SS;
  return code;
}
