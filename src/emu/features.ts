/**
 * The CPU model of the emulated machine: which paging features it has and how wide its physical
 * addresses are. MOV to CR4, WRMSR, the MMU's reserved-bit checks and CPUID all read from here.
 */

/** What the emulated CPU supports. */
export interface CpuFeatures {
  /** MAXPHYADDR: physical address width in bits (QEMU's default phys-bits is 40). */
  maxPhyAddr: number;
  /** 1 GiB pages (CPUID.80000001H:EDX.Page1GB); without it PS in a PDPTE is a reserved bit. */
  pdpe1gb: boolean;
  /** 5-level paging (CR4.LA57 may be set). */
  la57: boolean;
  /** Execute-disable (EFER.NXE may be set). */
  nx: boolean;
  /** Supervisor-mode execution prevention (CR4.SMEP). */
  smep: boolean;
  /** Supervisor-mode access prevention (CR4.SMAP, STAC/CLAC). */
  smap: boolean;
  /** Protection keys for user pages (CR4.PKE, RDPKRU/WRPKRU). */
  pku: boolean;
  /** Protection keys for supervisor pages (CR4.PKS, IA32_PKRS). */
  pks: boolean;
  /** Process-context identifiers (CR4.PCIDE). */
  pcid: boolean;
  /** Global pages (CR4.PGE). */
  pge: boolean;
}

/** A CPU like QEMU's `-cpu max` under TCG, with 40-bit physical addresses and 4-level paging. */
export const DEFAULT_FEATURES: Readonly<CpuFeatures> = Object.freeze({
  maxPhyAddr: 40,
  pdpe1gb: true,
  la57: false,
  nx: true,
  smep: true,
  smap: true,
  pku: true,
  pks: false,
  pcid: true,
  pge: true,
});

/** `partial` over the defaults, checked: MAXPHYADDR must be 32..52. */
export function cpuFeatures(partial: Partial<CpuFeatures> = {}): CpuFeatures {
  const f = { ...DEFAULT_FEATURES, ...partial };
  if (!Number.isInteger(f.maxPhyAddr) || f.maxPhyAddr < 32 || f.maxPhyAddr > 52) {
    throw new RangeError(`MAXPHYADDR ${f.maxPhyAddr} is not between 32 and 52`);
  }
  return f;
}

/** The four registers CPUID returns. */
export interface CpuidResult {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

const ascii = (s: string): number => (s.charCodeAt(0) | (s.charCodeAt(1) << 8) | (s.charCodeAt(2) << 16) | (s.charCodeAt(3) << 24)) >>> 0;
const bit = (on: boolean, n: number): number => (on ? 2 ** n : 0);

/**
 * CPUID for `leaf`/`subleaf` on a CPU with `f`: vendor GenuineIntel, the features the emulator
 * implements (no FPU/SSE), the paging ones as configured, MAXPHYADDR and the linear width in
 * 80000008H. `osxsave`/`ospke` mirror CR4. Unknown leaves return zeros.
 */
export function cpuid(f: CpuFeatures, leaf: number, subleaf: number, cr4Pke: boolean): CpuidResult {
  const zero = { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  switch (leaf >>> 0) {
    case 0:
      // "GenuineIntel": EBX, EDX, ECX.
      return { eax: 7, ebx: ascii('Genu'), edx: ascii('ineI'), ecx: ascii('ntel') };
    case 1:
      // Family 6, model 0x55, stepping 4 (like QEMU's Skylake-Server entries); one logical CPU.
      return {
        eax: 0x00050654,
        ebx: 0x00010800,
        // ECX: PCID (17)
        ecx: bit(f.pcid, 17),
        // EDX: PSE (3), TSC (4), MSR (5), PAE (6), PGE (13), CMOV (15), PAT (16), PSE-36 (17)
        edx: (bit(true, 3) | bit(true, 4) | bit(true, 5) | bit(true, 6) | bit(f.pge, 13) | bit(true, 15) | bit(true, 16) | bit(true, 17)) >>> 0,
      };
    case 7:
      if (subleaf !== 0) return zero;
      return {
        eax: 0,
        // EBX: SMEP (7), SMAP (20)
        ebx: (bit(f.smep, 7) | bit(f.smap, 20)) >>> 0,
        // ECX: PKU (3), OSPKE (4), LA57 (16), PKS (31)
        ecx: (bit(f.pku, 3) | bit(f.pku && cr4Pke, 4) | bit(f.la57, 16) | bit(f.pks, 31)) >>> 0,
        edx: 0,
      };
    case 0x80000000:
      return { eax: 0x80000008, ebx: 0, ecx: 0, edx: 0 };
    case 0x80000001:
      // ECX: LAHF/SAHF in 64-bit mode (0). EDX: NX (20), Page1GB (26), LM (29).
      return { eax: 0, ebx: 0, ecx: 1, edx: (bit(f.nx, 20) | bit(f.pdpe1gb, 26) | bit(true, 29)) >>> 0 };
    case 0x80000008:
      return { eax: f.maxPhyAddr | ((f.la57 ? 57 : 48) << 8), ebx: 0, ecx: 0, edx: 0 };
    default:
      return zero;
  }
}
