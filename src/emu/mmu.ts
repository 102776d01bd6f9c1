/**
 * The emulator's MMU: translation through the TLB, page walks on a miss, the access check, A/D
 * bits set the way hardware sets them (A on every entry of a translation used, D on the leaf when
 * writing; a write through a clean cached entry walks again), #PF with the SDM's error code, and
 * a separate debugger path that neither sets bits nor faults.
 */
import { isCanonical } from './bits.js';
import { EmuError } from './errors.js';
import { CpuFault, VEC } from './exceptions.js';
import type { CpuFeatures } from './features.js';
import { ACC_KIND, ACC_WRITE, pagingControl, type LevelName, type PagingControl } from './mmuBits.js';
import { deniedErrorCode, pageFaultCode } from './mmuRights.js';
import { walk, type Translation, type WalkFailureReason } from './mmuWalk.js';
import type { PhysicalMemory } from './physMemory.js';
import { Tlb } from './tlb.js';

/** What the debugger path answers for a linear address. */
export type DebugTranslation =
  | { ok: true; pa: number; pageSize: number; translation: Translation }
  | { ok: false; reason: WalkFailureReason | 'non-canonical'; level: LevelName | null };

/** A debugger access that does not translate: where it stopped and why. */
export interface DebugAccessFailure {
  ok: false;
  /** The first linear address that does not translate. */
  va: bigint;
  reason: WalkFailureReason | 'non-canonical';
}

/** The MMU of one CPU. */
export class Mmu {
  readonly tlb = new Tlb();
  /** The control-register state translations use. */
  ctl: PagingControl;
  /** PKRU: access/write-disable bits for user-mode pages per protection key. */
  pkru = 0;
  /** IA32_PKRS: the same for supervisor-mode pages (with CR4.PKS). */
  pkrs = 0;

  constructor(
    readonly mem: PhysicalMemory,
    readonly features: CpuFeatures,
  ) {
    this.ctl = pagingControl(0n, 0n, 0n, 0n, features);
  }

  /** Takes the new CR0/CR3/CR4/EFER into account. Flushing is the caller's decision (see the CPU's CR writes). */
  setControl(cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint): void {
    this.ctl = pagingControl(cr0, cr3, cr4, efer, this.features);
  }

  /** The width of canonical linear addresses: 57 with 5-level paging, else 48. */
  get linearBits(): number {
    return this.ctl.la57 && this.ctl.lma ? 57 : 48;
  }

  /**
   * The physical address for an access to canonical linear address `va` (`access`: ACC_* kind and
   * flags). Throws CpuFault(#PF) when the tables refuse it, EmuError E_UNSUPPORTED in a paging mode
   * the emulator does not model.
   */
  translate(va: bigint, access: number): number {
    const vpn = Number(va >> 12n);
    const ctl = this.ctl;
    const e = this.tlb.lookup(vpn, ctl.pcid);
    if (e) {
      const clean = (access & ACC_KIND) === ACC_WRITE && !e.dirty;
      if (!clean && deniedErrorCode(e, access, ctl, this.pkru, this.pkrs) === 0) return e.frame + Number(va & 0xfffn);
      // Refused or clean: walk again, as hardware does before it faults or sets D.
      this.tlb.drop(vpn, ctl.pcid);
    }
    return this.fill(va, vpn, access);
  }

  private fill(va: bigint, vpn: number, access: number): number {
    const ctl = this.ctl;
    const w = walk(this.mem, ctl, va);
    if (!w.ok) {
      if (w.reason === 'unsupported-mode') {
        throw new EmuError('E_UNSUPPORTED', 'paging without long mode (32-bit or PAE paging) is not emulated');
      }
      throw new CpuFault(VEC.PF, pageFaultCode(false, w.reason === 'reserved', access, ctl), va);
    }
    const denied = deniedErrorCode(w, access, ctl, this.pkru, this.pkrs);
    if (denied !== 0) throw new CpuFault(VEC.PF, denied, va);

    const write = (access & ACC_KIND) === ACC_WRITE;
    const last = w.steps.length - 1;
    w.steps.forEach((s, i) => {
      const bits = 0x20 | (i === last && write ? 0x40 : 0);
      if ((s.lo & bits) !== bits) this.mem.write32(s.address, s.lo | bits);
    });
    const leaf = w.steps[last];
    this.tlb.insert(vpn, {
      frame: w.frame,
      write: w.write,
      user: w.user,
      xd: w.xd,
      pkey: w.pkey,
      dirty: w.dirty || write,
      global: w.global && ctl.pge,
      pcid: ctl.pcid,
      baseVpn: vpn - Math.floor((Number(va & 0xffffffffn) % w.pageSize) / 4096),
      pageSize: w.pageSize,
      leafAddress: leaf ? leaf.address : -1,
    });
    return w.pa;
  }

  /** The debugger's translation of `va`: no TLB, no A/D bits, no access check, never a fault. */
  debugTranslate(va: bigint): DebugTranslation {
    if (this.ctl.pg && !isCanonical(va, this.linearBits)) return { ok: false, reason: 'non-canonical', level: null };
    const w = walk(this.mem, this.ctl, va);
    if (!w.ok) return { ok: false, reason: w.reason, level: w.level };
    return { ok: true, pa: w.pa, pageSize: w.pageSize, translation: w };
  }

  /** The physical pieces of `length` bytes at `va`, page by page, or where the first untranslatable page is. */
  private debugSpan(va: bigint, length: number): { pa: number; n: number }[] | DebugAccessFailure {
    const parts: { pa: number; n: number }[] = [];
    let done = 0;
    while (done < length) {
      const at = (va + BigInt(done)) & 0xffffffffffffffffn;
      const t = this.debugTranslate(at);
      if (!t.ok) return { ok: false, va: at, reason: t.reason };
      const n = Math.min(4096 - (t.pa % 4096), length - done);
      parts.push({ pa: t.pa, n });
      done += n;
    }
    return parts;
  }

  /** Reads `length` bytes at linear `va` for a debugger: all or nothing, no A/D bits, no faults. */
  debugRead(va: bigint, length: number): { ok: true; bytes: Uint8Array } | DebugAccessFailure {
    const parts = this.debugSpan(va, length);
    if (!Array.isArray(parts)) return parts;
    const bytes = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      bytes.set(this.mem.read(p.pa, p.n), at);
      at += p.n;
    }
    return { ok: true, bytes };
  }

  /** Writes `bytes` at linear `va` for a debugger, ignoring page protection: all or nothing, no A/D bits, no faults. */
  debugWrite(va: bigint, bytes: Uint8Array): { ok: true } | DebugAccessFailure {
    const parts = this.debugSpan(va, bytes.length);
    if (!Array.isArray(parts)) return parts;
    let at = 0;
    for (const p of parts) {
      this.mem.write(p.pa, bytes.subarray(at, at + p.n));
      at += p.n;
    }
    return { ok: true };
  }

  /** INVLPG `va`: drops the current PCID's and the global translations of the page containing it. */
  invalidatePage(va: bigint): void {
    this.tlb.invalidatePage(Number(va >> 12n), this.ctl.pcid);
  }
}
