/**
 * Addresses as their own types. A virtual and a physical address are both `bigint` at run time
 * (neither fits a JS number in general), but the brands keep them from being mixed up.
 */

/** A linear (virtual) address, 64 bits, as the CPU sees it after segmentation. */
export type VirtAddr = bigint & { readonly __virt: true };
/** A guest-physical address. */
export type PhysAddr = bigint & { readonly __phys: true };

const U64 = (1n << 64n) - 1n;

/** Error raised for an address that cannot be used as asked; `code` is stable. */
export class AddressError extends Error {
  constructor(
    readonly code: 'E_NON_CANONICAL' | 'E_ADDRESS_RANGE',
    message: string,
  ) {
    super(message);
    this.name = 'AddressError';
  }
}

/** True when `va` is canonical for a `width`-bit linear address space (bits 63..width-1 equal). */
export function isCanonical(va: bigint, width: number): boolean {
  if (width >= 64) return true;
  const top = va >> BigInt(width - 1);
  return top === 0n || top === (1n << BigInt(65 - width)) - 1n;
}

/** Sign-extends the low `width` bits of `va` to a canonical 64-bit address. */
export function virtTruncate(va: bigint, width: number): VirtAddr {
  const low = va & ((1n << BigInt(width)) - 1n);
  const sign = (low >> BigInt(width - 1)) & 1n;
  return (sign ? (low | (U64 ^ ((1n << BigInt(width)) - 1n))) : low) as VirtAddr;
}

/** A checked virtual address: throws `AddressError` (E_NON_CANONICAL) unless canonical for `width`. */
export function virt(va: bigint, width = 48): VirtAddr {
  const r = tryVirt(va, width);
  if (!r.ok) throw r.error;
  return r.value;
}

/** Like {@link virt}, but returns a result instead of throwing. */
export function tryVirt(
  va: bigint,
  width = 48,
): { ok: true; value: VirtAddr } | { ok: false; error: AddressError } {
  if (va < 0n || va > U64) {
    return { ok: false, error: new AddressError('E_ADDRESS_RANGE', `${hex(va)} is not a 64-bit address`) };
  }
  if (!isCanonical(va, width)) {
    return {
      ok: false,
      error: new AddressError(
        'E_NON_CANONICAL',
        `${hex(va)} is not canonical: bits 63..${width - 1} must all equal bit ${width - 1}`,
      ),
    };
  }
  return { ok: true, value: va as VirtAddr };
}

/** A physical address; throws `AddressError` (E_ADDRESS_RANGE) when it is negative or above 52 bits. */
export function phys(pa: bigint | number): PhysAddr {
  const v = BigInt(pa);
  if (v < 0n || v >= 1n << 52n) {
    throw new AddressError('E_ADDRESS_RANGE', `${hex(v)} is not a physical address (52 bits at most)`);
  }
  return v as PhysAddr;
}

/** Lower-case hex with `0x`, as every JSON shape of pagewalk writes addresses and raw values. */
export function hex(v: bigint | number): string {
  if (typeof v === 'number') {
    return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
  }
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** Hex padded to `digits` (16 for a 64-bit value), with `0x`. */
export function hexPad(v: bigint | number, digits = 16): string {
  return `0x${BigInt(v).toString(16).padStart(digits, '0')}`;
}
