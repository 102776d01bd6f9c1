/**
 * The access check on a translated page (Intel SDM vol. 3, 4.6): user/supervisor, read-only with
 * CR0.WP, execute-disable, SMEP, SMAP (EFLAGS.AC for explicit accesses only) and protection keys,
 * and the page-fault error code of a refused access (SDM 4.7), built in one place.
 */
import { ACC_AC, ACC_EXEC, ACC_IMPLICIT, ACC_KIND, ACC_USER, ACC_WRITE, PFE, type PagingControl } from './mmuBits.js';

/** The effective rights of a page, as the walk or the TLB holds them. */
export interface PageRights {
  write: boolean;
  user: boolean;
  xd: boolean;
  pkey: number;
}

/**
 * The page-fault error code for an access refused by a present translation's rights, or 0 when
 * the access is allowed. `access` is an ACC_* kind with ACC_USER / ACC_IMPLICIT / ACC_AC flags;
 * `pkru` and `pkrs` are the protection-key rights registers.
 */
export function deniedErrorCode(r: PageRights, access: number, ctl: PagingControl, pkru: number, pkrs: number): number {
  const kind = access & ACC_KIND;
  const user = (access & ACC_USER) !== 0;
  let denied = false;
  if (user) {
    denied = !r.user || (kind === ACC_WRITE && !r.write) || (kind === ACC_EXEC && ctl.nxe && r.xd);
  } else if (kind === ACC_EXEC) {
    denied = (ctl.nxe && r.xd) || (ctl.smep && r.user);
  } else {
    // SMAP: supervisor data accesses to user pages; EFLAGS.AC lifts it for explicit accesses only.
    const acLifts = (access & ACC_AC) !== 0 && (access & ACC_IMPLICIT) === 0;
    denied = (ctl.smap && r.user && !acLifts) || (kind === ACC_WRITE && !r.write && ctl.wp);
  }

  // Protection keys: PKRU governs user-mode pages (whoever accesses them), PKRS supervisor-mode
  // pages (supervisor accesses only); never instruction fetches. The SDM sets the PK bit whenever
  // the key forbids the access, whatever else does too.
  let pk = false;
  if (kind !== ACC_EXEC && !(user && !r.user) && (r.user ? ctl.pke : ctl.pks)) {
    const reg = r.user ? pkru : pkrs;
    const ad = (reg >>> (r.pkey * 2)) & 1;
    const wd = (reg >>> (r.pkey * 2 + 1)) & 1;
    pk = ad === 1 || (wd === 1 && kind === ACC_WRITE && (user || ctl.wp));
  }
  if (!denied && !pk) return 0;
  return pageFaultCode(true, false, access, ctl) | (pk ? PFE.PK : 0);
}

/**
 * The error code of a page fault: P for a present translation (and always with RSVD, as the SDM
 * says), W for writes, U for user-mode accesses, I/D for fetches when NXE or SMEP is on.
 */
export function pageFaultCode(present: boolean, rsvd: boolean, access: number, ctl: PagingControl): number {
  const kind = access & ACC_KIND;
  let code = 0;
  if (present || rsvd) code |= PFE.P;
  if (kind === ACC_WRITE) code |= PFE.W;
  if ((access & ACC_USER) !== 0) code |= PFE.U;
  if (rsvd) code |= PFE.RSVD;
  if (kind === ACC_EXEC && (ctl.nxe || ctl.smep)) code |= PFE.ID;
  return code;
}
