/**
 * Protection faults through real tables: CR0.WP, SMEP, SMAP, PKRU and IA32_PKRS, and which level a
 * protection fault is blamed on (`fault.level` is the entry that removed the right).
 */
import { describe, expect, it } from 'vitest';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import type { Access } from '../../src/paging/rights.js';
import { walk } from '../../src/paging/walk.js';
import { ctxOf, machine } from './coreFixtures.js';

const VA = 0x40_0000n;
const sRead: Access = { kind: 'read', user: false };
const sWrite: Access = { kind: 'write', user: false };
const sExec: Access = { kind: 'exec', user: false };
const uRead: Access = { kind: 'read', user: true };
const uWrite: Access = { kind: 'write', user: true };

function oneModePage(flags: Parameters<ReturnType<typeof machine>['pt']['map']>[3], mode: '32-bit' | '4-level' = '4-level') {
  const m = machine(mode);
  m.pt.map(VA, 0x9000, 4096, flags);
  return m;
}

describe('CR0.WP', () => {
  it('WP=1: a supervisor write to a read-only page faults with 0x3, blamed on the PT', () => {
    const { mem, pt } = oneModePage({ write: false });
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, sWrite);
    expect(r.translation?.pa).toBe(0x9000n);
    expect(r.fault).toEqual({
      level: 'PT',
      reason: 'protection',
      vector: 14,
      errorCode: 0x3,
      denials: ['read-only'],
      explanation: 'supervisor write to a read-only page (R/W=0 in the PT entry) with CR0.WP=1',
    });
  });

  it('WP=0: the same write goes through; a user write still faults', () => {
    const { mem, pt } = oneModePage({ write: false, user: true });
    const ctx = ctxOf('4-level', pt.cr3, { clear: { cr0: CR0.WP } });
    expect(walk(mem, ctx, VA, sWrite).fault).toBeNull();
    expect(walk(mem, ctx, VA, uWrite).fault).toMatchObject({ level: 'PT', errorCode: 0x7, denials: ['read-only'] });
  });
});

describe('level attribution', () => {
  it('NX in the PML4 entry forbids fetches everywhere below it: level PML4', () => {
    const { mem, pt } = oneModePage({});
    pt.setEntry(VA, 'PML4', pt.getEntry(VA, 'PML4') | (1n << 63n));
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, sExec);
    expect(r.fault).toEqual({
      level: 'PML4',
      reason: 'protection',
      vector: 14,
      errorCode: 0x11,
      denials: ['no-execute'],
      explanation: 'instruction fetch from a no-execute page (NX set in the PML4 entry; NX at any level forbids fetches)',
    });
  });

  it('R/W=0 in the PDPT entry: level PDPT, though the PTE is writable', () => {
    const { mem, pt } = oneModePage({});
    pt.setEntry(VA, 'PDPT', pt.getEntry(VA, 'PDPT') & ~0x2n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, sWrite);
    expect(r.steps[3]!.flags).toContain('RW');
    expect(r.fault).toMatchObject({ level: 'PDPT', errorCode: 0x3, denials: ['read-only'] });
  });

  it('U/S=0 in the PD entry: a user read is blamed on the PD', () => {
    const { mem, pt } = oneModePage({ user: true });
    pt.setEntry(VA, 'PD', pt.getEntry(VA, 'PD') & ~0x4n);
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, uRead);
    expect(r.fault).toMatchObject({ level: 'PD', errorCode: 0x5, denials: ['user-to-supervisor'] });
    expect(r.fault?.explanation).toBe('user-mode read of a supervisor page (U/S=0 in the PD entry)');
  });

  it('blames each rule on its own level in the explanation', () => {
    const { mem, pt } = oneModePage({ user: true });
    pt.setEntry(VA, 'PD', pt.getEntry(VA, 'PD') & ~0x2n);
    const r = walk(mem, ctxOf('4-level', pt.cr3, { set: { cr4: CR4.SMAP } }), VA, sWrite);
    expect(r.fault).toMatchObject({ level: 'PT', errorCode: 0x3, denials: ['smap', 'read-only'] });
    expect(r.fault?.explanation).toBe(
      'supervisor data access to a user page with CR4.SMAP=1 and EFLAGS.AC=0; ' +
        'supervisor write to a read-only page (R/W=0 in the PD entry) with CR0.WP=1',
    );
  });

  it('blames a user write to a read-only supervisor page on both rules', () => {
    const { mem, pt } = oneModePage({ write: false });
    const r = walk(mem, ctxOf('4-level', pt.cr3), VA, uWrite);
    expect(r.fault).toMatchObject({ level: 'PT', errorCode: 0x7, denials: ['user-to-supervisor', 'read-only'] });
  });
});

describe('SMEP', () => {
  it('a supervisor fetch from a user page faults with 0x11', () => {
    const { mem, pt } = oneModePage({ user: true });
    const r = walk(mem, ctxOf('4-level', pt.cr3, { set: { cr4: CR4.SMEP } }), VA, sExec);
    expect(r.fault).toMatchObject({ level: 'PT', reason: 'protection', errorCode: 0x11, denials: ['smep'] });
    expect(r.fault?.explanation).toBe('supervisor instruction fetch from a user page with CR4.SMEP=1');
    expect(walk(mem, ctxOf('4-level', pt.cr3), VA, sExec).fault).toBeNull();
  });

  it('works in 32-bit paging, and sets I/D there', () => {
    const { mem, pt } = oneModePage({ user: true }, '32-bit');
    const r = walk(mem, ctxOf('32-bit', pt.cr3, { set: { cr4: CR4.SMEP } }), VA, sExec);
    expect(r.fault).toMatchObject({ level: 'PT', errorCode: 0x11, denials: ['smep'] });
  });

  it('one supervisor page on the path is enough to make the page supervisor', () => {
    const { mem, pt } = oneModePage({ user: true });
    pt.setEntry(VA, 'PML4', pt.getEntry(VA, 'PML4') & ~0x4n);
    expect(walk(mem, ctxOf('4-level', pt.cr3, { set: { cr4: CR4.SMEP } }), VA, sExec).fault).toBeNull();
  });
});

describe('SMAP', () => {
  const smap = { set: { cr4: CR4.SMAP } };

  it('a supervisor read of a user page faults with EFLAGS.AC=0', () => {
    const { mem, pt } = oneModePage({ user: true });
    expect(walk(mem, ctxOf('4-level', pt.cr3, smap), VA, sRead).fault).toMatchObject({
      level: 'PT',
      errorCode: 0x1,
      denials: ['smap'],
    });
  });

  it('EFLAGS.AC=1 lets an explicit access through', () => {
    const { mem, pt } = oneModePage({ user: true });
    expect(walk(mem, ctxOf('4-level', pt.cr3, smap), VA, { ...sWrite, ac: true }).fault).toBeNull();
  });

  it('an implicit access (IDT, GDT, TSS) faults whatever EFLAGS.AC says', () => {
    const { mem, pt } = oneModePage({ user: true });
    const r = walk(mem, ctxOf('4-level', pt.cr3, smap), VA, { ...sRead, implicit: true, ac: true });
    expect(r.fault).toMatchObject({ errorCode: 0x1, denials: ['smap'] });
    expect(r.fault?.explanation).toBe(
      'implicit supervisor access (GDT/IDT/TSS) to a user page with CR4.SMAP=1; EFLAGS.AC cannot allow it',
    );
  });
});

describe('protection keys', () => {
  const pke = (pkru: number) => ({ set: { cr4: CR4.PKE }, features: { pkru } });

  it('PKRU AD: a user read faults with P|U|PK (0x25)', () => {
    const { mem, pt } = oneModePage({ user: true, pkey: 7 });
    const r = walk(mem, ctxOf('4-level', pt.cr3, pke(1 << 14)), VA, uRead);
    expect(r.fault).toMatchObject({ level: 'PT', errorCode: 0x25, denials: ['pk-access-disabled'] });
    expect(r.fault?.explanation).toBe('protection key 7 has access disabled (AD=1)');
  });

  it('PKRU WD: a user write faults with 0x27, a user read does not', () => {
    const { mem, pt } = oneModePage({ user: true, pkey: 7 });
    const ctx = ctxOf('4-level', pt.cr3, pke(1 << 15));
    expect(walk(mem, ctx, VA, uWrite).fault).toMatchObject({ errorCode: 0x27, denials: ['pk-write-disabled'] });
    expect(walk(mem, ctx, VA, uRead).fault).toBeNull();
  });

  it('PKRU WD: a supervisor write faults only with CR0.WP=1', () => {
    const { mem, pt } = oneModePage({ user: true, pkey: 7 });
    expect(walk(mem, ctxOf('4-level', pt.cr3, pke(1 << 15)), VA, sWrite).fault?.errorCode).toBe(0x23);
    const noWp = ctxOf('4-level', pt.cr3, { ...pke(1 << 15), clear: { cr0: CR0.WP } });
    expect(walk(mem, noWp, VA, sWrite).fault).toBeNull();
  });

  it('PKRU does nothing with CR4.PKE=0', () => {
    const { mem, pt } = oneModePage({ user: true, pkey: 7 });
    expect(walk(mem, ctxOf('4-level', pt.cr3, { features: { pkru: 0xffff_ffff } }), VA, uWrite).fault).toBeNull();
  });

  it('PKS: IA32_PKRS AD refuses a supervisor read of a supervisor page (0x21)', () => {
    const { mem, pt } = oneModePage({ pkey: 2 });
    const ctx = ctxOf('4-level', pt.cr3, { set: { cr4: CR4.PKS }, features: { pkrs: 1 << 4 } });
    expect(walk(mem, ctx, VA, sRead).fault).toMatchObject({ level: 'PT', errorCode: 0x21, denials: ['pk-access-disabled'] });
    expect(walk(mem, ctx, VA, sExec).fault).toBeNull();
  });

  it('uses the key of the leaf of a huge page', () => {
    const { mem, pt } = machine('4-level');
    pt.map(0x20_0000n, 0x20_0000, 0x20_0000, { user: true, pkey: 15 });
    const r = walk(mem, ctxOf('4-level', pt.cr3, pke(1 << 30)), 0x21_0000n, uRead);
    expect(r.steps.at(-1)).toMatchObject({ level: 'PD', protectionKey: 15 });
    expect(r.fault).toMatchObject({ level: 'PD', errorCode: 0x25 });
  });
});

describe('XD without NXE', () => {
  it('rights never lose execute in 32-bit paging or with NXE=0', () => {
    const { mem, pt } = oneModePage({ user: true }, '32-bit');
    expect(walk(mem, ctxOf('32-bit', pt.cr3, { set: { efer: EFER.NXE } }), VA, sExec).translation?.rights.execute).toBe(true);
  });
});
