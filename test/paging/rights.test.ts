/**
 * Effective rights and the access check (SDM vol. 3, 4.6) and the error code (4.7), on their own:
 * rights are given directly here; test/paging/protection.test.ts holds the same rules through walks.
 */
import { describe, expect, it } from 'vitest';
import { PF, pageFaultErrorCode } from '../../src/paging/errorCode.js';
import { ALL_RIGHTS, checkAccess, combineRights, type Access, type Rights } from '../../src/paging/rights.js';

type Ctx = Parameters<typeof checkAccess>[3];
const CTX: Ctx = { wp: true, smep: false, smap: false, nxe: true, pke: false, pks: false, pkru: 0, pkrs: 0 };

const rw = (o: Partial<Rights> = {}): Rights => ({ write: true, user: false, execute: true, ...o });
const sRead: Access = { kind: 'read', user: false };
const sWrite: Access = { kind: 'write', user: false };
const sExec: Access = { kind: 'exec', user: false };
const uRead: Access = { kind: 'read', user: true };
const uWrite: Access = { kind: 'write', user: true };
const uExec: Access = { kind: 'exec', user: true };

/** PKRU/PKRS with AD (bit 2k) or WD (bit 2k+1) set for key k. */
const AD = (k: number): number => (1 << (2 * k)) >>> 0;
const WD = (k: number): number => (1 << (2 * k + 1)) >>> 0;

describe('combineRights', () => {
  it('ANDs R/W and U/S and ORs XD over the levels', () => {
    let r = ALL_RIGHTS;
    r = combineRights(r, true, true, false);
    expect(r).toEqual({ write: true, user: true, execute: true });
    r = combineRights(r, false, true, true);
    r = combineRights(r, true, false, false);
    expect(r).toEqual({ write: false, user: false, execute: false });
    expect(combineRights(r, true, true, false)).toEqual({ write: false, user: false, execute: false });
  });
});

describe('checkAccess: user and supervisor pages', () => {
  it('refuses user accesses to a supervisor page (error code 0x5, 0x7, 0x15)', () => {
    expect(checkAccess(rw(), null, uRead, CTX)).toEqual({ faults: true, errorCode: 0x5, denials: ['user-to-supervisor'] });
    expect(checkAccess(rw(), null, uWrite, CTX).errorCode).toBe(0x7);
    expect(checkAccess(rw(), null, uExec, CTX).errorCode).toBe(0x15);
  });

  it('lists every rule a user access breaks, the missing U/S first', () => {
    expect(checkAccess(rw({ write: false }), null, uWrite, CTX).denials).toEqual(['user-to-supervisor', 'read-only']);
    expect(checkAccess(rw({ execute: false }), null, uExec, CTX).denials).toEqual(['user-to-supervisor', 'no-execute']);
  });

  it('allows user accesses to a user page within its rights', () => {
    const user = rw({ user: true });
    for (const a of [uRead, uWrite, uExec]) expect(checkAccess(user, null, a, CTX).faults).toBe(false);
    expect(checkAccess(rw({ user: true, write: false }), null, uWrite, CTX)).toEqual({
      faults: true,
      errorCode: 0x7,
      denials: ['read-only'],
    });
  });

  it('honours CR0.WP for supervisor writes to read-only pages only', () => {
    const ro = rw({ write: false });
    expect(checkAccess(ro, null, sWrite, CTX)).toEqual({ faults: true, errorCode: 0x3, denials: ['read-only'] });
    expect(checkAccess(ro, null, sWrite, { ...CTX, wp: false }).faults).toBe(false);
    // WP=0 does not open read-only pages to user-mode writes.
    expect(checkAccess(rw({ write: false, user: true }), null, uWrite, { ...CTX, wp: false }).errorCode).toBe(0x7);
  });

  it('refuses fetches from XD pages, with I/D set because NXE=1', () => {
    expect(checkAccess(rw({ execute: false }), null, sExec, CTX)).toEqual({ faults: true, errorCode: 0x11, denials: ['no-execute'] });
  });
});

describe('checkAccess: SMEP', () => {
  const smep = { ...CTX, smep: true };
  it('refuses supervisor fetches from user pages', () => {
    expect(checkAccess(rw({ user: true }), null, sExec, smep)).toEqual({ faults: true, errorCode: 0x11, denials: ['smep'] });
    expect(checkAccess(rw({ user: true }), null, sExec, CTX).faults).toBe(false);
  });

  it('sets I/D for a SMEP fault even with NXE=0 (32-bit paging)', () => {
    expect(checkAccess(rw({ user: true }), null, sExec, { ...smep, nxe: false }).errorCode).toBe(0x11);
  });

  it('leaves data accesses and user fetches alone', () => {
    for (const a of [sRead, sWrite, uExec]) expect(checkAccess(rw({ user: true }), null, a, smep).faults).toBe(false);
  });
});

describe('checkAccess: SMAP', () => {
  const smap = { ...CTX, smap: true };
  const user = rw({ user: true });

  it('refuses supervisor data accesses to user pages with EFLAGS.AC=0', () => {
    expect(checkAccess(user, null, sRead, smap)).toEqual({ faults: true, errorCode: 0x1, denials: ['smap'] });
    expect(checkAccess(user, null, sWrite, smap)).toEqual({ faults: true, errorCode: 0x3, denials: ['smap'] });
  });

  it('lets explicit accesses through with EFLAGS.AC=1', () => {
    expect(checkAccess(user, null, { ...sRead, ac: true }, smap).faults).toBe(false);
    expect(checkAccess(user, null, { ...sWrite, ac: true }, smap).faults).toBe(false);
  });

  it('refuses implicit accesses (GDT/IDT/TSS) whatever EFLAGS.AC says', () => {
    expect(checkAccess(user, null, { ...sRead, implicit: true, ac: true }, smap)).toEqual({
      faults: true,
      errorCode: 0x1,
      denials: ['smap'],
    });
    expect(checkAccess(user, null, { ...sRead, implicit: true }, CTX).faults).toBe(false);
  });

  it('does not concern supervisor pages, user-mode accesses or fetches', () => {
    expect(checkAccess(rw(), null, sRead, smap).faults).toBe(false);
    expect(checkAccess(user, null, uWrite, smap).faults).toBe(false);
    expect(checkAccess(user, null, sExec, smap).faults).toBe(false);
  });

  it('reports SMAP and WP together for a supervisor write to a read-only user page', () => {
    expect(checkAccess(rw({ user: true, write: false }), null, sWrite, smap).denials).toEqual(['smap', 'read-only']);
  });
});

describe('checkAccess: protection keys for user pages (PKRU)', () => {
  const pke = { ...CTX, pke: true };
  const user = rw({ user: true });

  it('AD refuses every data access, user or supervisor, with PK in the error code', () => {
    const ctx = { ...pke, pkru: AD(5) };
    expect(checkAccess(user, 5, uRead, ctx)).toEqual({ faults: true, errorCode: 0x25, denials: ['pk-access-disabled'] });
    expect(checkAccess(user, 5, uWrite, ctx).errorCode).toBe(0x27);
    expect(checkAccess(user, 5, sRead, ctx).errorCode).toBe(0x21);
    expect(checkAccess(user, 4, uRead, ctx).faults).toBe(false);
  });

  it('never affects instruction fetches', () => {
    expect(checkAccess(user, 5, uExec, { ...pke, pkru: AD(5) | WD(5) }).faults).toBe(false);
  });

  it('WD refuses user writes, and supervisor writes only with CR0.WP=1', () => {
    const ctx = { ...pke, pkru: WD(2) };
    expect(checkAccess(user, 2, uWrite, ctx)).toEqual({ faults: true, errorCode: 0x27, denials: ['pk-write-disabled'] });
    expect(checkAccess(user, 2, uRead, ctx).faults).toBe(false);
    expect(checkAccess(user, 2, sWrite, ctx)).toEqual({ faults: true, errorCode: 0x23, denials: ['pk-write-disabled'] });
    expect(checkAccess(user, 2, sWrite, { ...ctx, wp: false }).faults).toBe(false);
    expect(checkAccess(user, 2, uWrite, { ...ctx, wp: false }).errorCode).toBe(0x27);
  });

  it('does nothing with CR4.PKE=0, and PKRU does not govern supervisor pages', () => {
    expect(checkAccess(user, 5, uRead, { ...CTX, pkru: AD(5) }).faults).toBe(false);
    expect(checkAccess(rw(), 5, sRead, { ...pke, pkru: AD(5) }).faults).toBe(false);
  });

  it('sets PK alongside another violation when the key also refuses the access', () => {
    expect(checkAccess(rw({ user: true, write: false }), 1, uWrite, { ...pke, pkru: WD(1) })).toEqual({
      faults: true,
      errorCode: 0x27,
      denials: ['read-only', 'pk-write-disabled'],
    });
  });

  it('sets no PK for a user access to a supervisor page (the U/S check comes first, as in QEMU)', () => {
    expect(checkAccess(rw(), 1, uRead, { ...pke, pks: true, pkrs: AD(1) })).toEqual({
      faults: true,
      errorCode: 0x5,
      denials: ['user-to-supervisor'],
    });
  });
});

describe('checkAccess: protection keys for supervisor pages (PKS)', () => {
  const pks = { ...CTX, pks: true };

  it('AD in IA32_PKRS refuses supervisor data accesses to supervisor pages', () => {
    expect(checkAccess(rw(), 3, sRead, { ...pks, pkrs: AD(3) })).toEqual({
      faults: true,
      errorCode: 0x21,
      denials: ['pk-access-disabled'],
    });
    expect(checkAccess(rw(), 3, sExec, { ...pks, pkrs: AD(3) }).faults).toBe(false);
  });

  it('WD in IA32_PKRS refuses supervisor writes only with CR0.WP=1', () => {
    expect(checkAccess(rw(), 15, sWrite, { ...pks, pkrs: WD(15) }).errorCode).toBe(0x23);
    expect(checkAccess(rw(), 15, sWrite, { ...pks, pkrs: WD(15), wp: false }).faults).toBe(false);
  });

  it('does nothing with CR4.PKS=0, and IA32_PKRS does not govern user pages', () => {
    expect(checkAccess(rw(), 3, sRead, { ...CTX, pkrs: AD(3) }).faults).toBe(false);
    expect(checkAccess(rw({ user: true }), 3, sRead, { ...pks, pkrs: AD(3) }).faults).toBe(false);
  });
});

describe('pageFaultErrorCode', () => {
  const both = { smep: false, nxe: true };

  it('sets P for protection faults and leaves it clear for not-present ones', () => {
    expect(pageFaultErrorCode({ present: false, write: false, user: false, fetch: false }, both)).toBe(0);
    expect(pageFaultErrorCode({ present: true, write: true, user: true, fetch: false }, both)).toBe(0x7);
  });

  it('sets P with RSVD, as the SDM says (QEMU 7.2 pushes RSVD without P)', () => {
    expect(pageFaultErrorCode({ present: false, rsvd: true, write: false, user: false, fetch: false }, both)).toBe(PF.P | PF.RSVD);
  });

  it('reports I/D only with NXE (PAE or long mode) or SMEP', () => {
    const fetch = { present: false, write: false, user: true, fetch: true };
    expect(pageFaultErrorCode(fetch, { smep: false, nxe: false })).toBe(0x4);
    expect(pageFaultErrorCode(fetch, { smep: false, nxe: true })).toBe(0x14);
    expect(pageFaultErrorCode(fetch, { smep: true, nxe: false })).toBe(0x14);
  });

  it('sets PK and SS when told', () => {
    expect(pageFaultErrorCode({ present: true, write: true, user: false, fetch: false, pk: true, shadowStack: true }, both)).toBe(
      0x63,
    );
  });
});
