/**
 * Effective rights across the levels of a translation, and the access check that decides whether
 * an access faults (SDM vol. 3, 4.6): R/W and U/S are ANDed over all levels, XD is ORed, and CR0.WP,
 * SMEP, SMAP and protection keys apply on top.
 */
import { pageFaultErrorCode } from './errorCode.js';
import type { PagingContext } from './mode.js';

/** What an access does. */
export type AccessKind = 'read' | 'write' | 'exec';

/** An access to a linear address. */
export interface Access {
  kind: AccessKind;
  /** A user-mode access (CPL 3). Implicit accesses to system structures are supervisor accesses. */
  user: boolean;
  /** An implicit supervisor access (GDT, IDT, TSS, LDT reads): SMAP applies whatever EFLAGS.AC says. */
  implicit?: boolean;
  /** EFLAGS.AC=1: explicit supervisor data accesses to user pages pass SMAP. */
  ac?: boolean;
}

/** The effective rights of a translation. */
export interface Rights {
  /** Writable at every level. */
  write: boolean;
  /** User-accessible at every level. */
  user: boolean;
  /** Executable: no level has XD set (always true without NXE). */
  execute: boolean;
}

/** Why an access to a mapped page is refused. */
export type Denial =
  | 'user-to-supervisor'
  | 'read-only'
  | 'no-execute'
  | 'smep'
  | 'smap'
  | 'pk-access-disabled'
  | 'pk-write-disabled';

/** The verdict on an access to a mapped page. */
export interface AccessVerdict {
  faults: boolean;
  /** The #PF error code when it faults, else null. */
  errorCode: number | null;
  /** Every rule the access breaks, the most telling first; empty when it does not fault. */
  denials: Denial[];
}

/** Rights of a translation before any level is applied. */
export const ALL_RIGHTS: Readonly<Rights> = Object.freeze({ write: true, user: true, execute: true });

/** Combines the rights so far with one more level's bits. */
export function combineRights(acc: Rights, rw: boolean, us: boolean, xd: boolean): Rights {
  return { write: acc.write && rw, user: acc.user && us, execute: acc.execute && !xd };
}

/**
 * Decides whether `access` to a page with `rights` (and protection key `pkey` when the mode has
 * them) faults under `ctx`, and with which error code.
 */
export function checkAccess(
  rights: Rights,
  pkey: number | null,
  access: Access,
  ctx: Pick<PagingContext, 'wp' | 'smep' | 'smap' | 'nxe' | 'pke' | 'pks' | 'pkru' | 'pkrs'>,
): AccessVerdict {
  const denials: Denial[] = [];
  const { kind, user } = access;
  if (user) {
    if (!rights.user) denials.push('user-to-supervisor');
    if (kind === 'write' && !rights.write) denials.push('read-only');
    if (kind === 'exec' && !rights.execute) denials.push('no-execute');
  } else if (kind === 'exec') {
    if (!rights.execute) denials.push('no-execute');
    if (ctx.smep && rights.user) denials.push('smep');
  } else {
    const smapBlocks = ctx.smap && rights.user && (access.implicit === true || access.ac !== true);
    if (smapBlocks) denials.push('smap');
    if (kind === 'write' && !rights.write && ctx.wp) denials.push('read-only');
  }

  // Protection keys: PKRU for user-mode addresses (whoever accesses them), IA32_PKRS for
  // supervisor-mode addresses. Instruction fetches are never affected.
  let pk = false;
  const keysOn = rights.user ? ctx.pke : ctx.pks;
  if (kind !== 'exec' && pkey !== null && keysOn && !(user && !rights.user)) {
    const reg = rights.user ? ctx.pkru : ctx.pkrs;
    const accessDisabled = ((reg >>> (pkey * 2)) & 1) !== 0;
    const writeDisabled = ((reg >>> (pkey * 2 + 1)) & 1) !== 0;
    if (accessDisabled) {
      denials.push('pk-access-disabled');
      pk = true;
    } else if (writeDisabled && kind === 'write' && (user || ctx.wp)) {
      denials.push('pk-write-disabled');
      pk = true;
    }
  }

  if (denials.length === 0) return { faults: false, errorCode: null, denials };
  return {
    faults: true,
    errorCode: pageFaultErrorCode(
      { present: true, write: kind === 'write', user, fetch: kind === 'exec', pk },
      ctx,
    ),
    denials,
  };
}
