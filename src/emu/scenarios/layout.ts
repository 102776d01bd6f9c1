/**
 * Where every scenario puts things: one machine layout shared by all of them, like one board with
 * one boot loader. Physical addresses are numbers, virtual ones bigints.
 *
 *   0x100000  (kernel-wrong-physical-base only) zeroed memory where the kernel wrongly maps itself
 *   0x200000  the kernel image, mapped by the loader at 0xffffffff80000000
 *   0x300000  the loader's area: boot information, GDT, page tables, the boot stack at its top
 *   0x400000  usable memory: the kernel's frame allocator hands out page-table frames from here
 *   0x800000  free: nothing of a scenario lives or points here (the QEMU hand-over entry goes here)
 *   RAM ends at 32 MiB; the loader's direct map covers all of it.
 */

/** The layout shared by every scenario. */
export const LAYOUT = {
  /** RAM size (QEMU `-m 32`). */
  ramSize: 32 << 20,
  /** The higher-half direct map: virtual = hhdm + physical. */
  hhdm: 0xffff800000000000n,
  /** Where the kernel is linked. */
  kernelVirt: 0xffffffff80000000n,
  /** Where the loader put the kernel. */
  kernelPhys: 0x200000,
  /** The physical base kernel-wrong-physical-base maps its image from (its linker script's AT()). */
  wrongKernelPhys: 0x100000,
  /** The boot information the loader passes in RDI (through the direct map). */
  bootInfoPhys: 0x300000,
  /** The loader's GDT. */
  loaderGdtPhys: 0x301000,
  /** Frames for the loader's page tables: [start, end). */
  loaderTables: { start: 0x310000, end: 0x3f0000 },
  /** The boot stack: [base, top); RSP starts at the top (through the direct map). */
  bootStack: { base: 0x3f0000, top: 0x400000 },
  /** Usable memory, as the boot information reports it: [start, end). */
  usable: { start: 0x400000, end: 0x800000 },
  /** Memory no scenario touches: [start, end). */
  free: { start: 0x800000, end: 0x900000 },
  /** COM1. */
  serialPort: 0x3f8,
} as const;

/** Offsets in the boot information block (all qwords). */
export const BOOT_INFO = {
  /** 'PWBOOT01' */
  magic: 0,
  /** The direct map's virtual base. */
  hhdm: 8,
  /** Physical and virtual base of the kernel image. */
  kernelPhys: 16,
  kernelVirt: 24,
  /** The usable memory range [start, end). */
  usableStart: 32,
  usableEnd: 40,
  /** The RAM size. */
  ramSize: 48,
  /** The block's size in bytes. */
  size: 56,
} as const;

/** The boot information magic, 'PWBOOT01' read as a little-endian qword. */
export const BOOT_INFO_MAGIC = 0x3130544f4f425750n;

/** Page-table entry bits the kernels and loaders write. */
export const PTE = {
  P: 1n,
  RW: 2n,
  US: 4n,
  PS: 0x80n,
  G: 0x100n,
  NX: 1n << 63n,
} as const;
