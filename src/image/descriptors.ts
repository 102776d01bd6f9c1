/**
 * Byte builders for the system structures a kernel sets up and exception delivery reads: 64-bit
 * GDT entries (code, data, TSS), IDT gates (64-bit and 32-bit) and the 64-bit TSS.
 */

/** A flat 64-bit code segment descriptor (L=1, P=1, DPL `dpl`, accessed bit preset). */
export function codeDescriptor64(dpl = 0): bigint {
  // limit 0xfffff, base 0, type 0xb (execute/read, accessed), S=1, P=1, L=1, G=1
  return 0x00af9b000000ffffn | (BigInt(dpl & 3) << 45n);
}

/** A flat data segment descriptor (writable, accessed bit preset). */
export function dataDescriptor(dpl = 0): bigint {
  return 0x00cf93000000ffffn | (BigInt(dpl & 3) << 45n);
}

/** A flat 32-bit code segment descriptor. */
export function codeDescriptor32(dpl = 0): bigint {
  return 0x00cf9b000000ffffn | (BigInt(dpl & 3) << 45n);
}

/** The two 8-byte halves of a 64-bit available TSS descriptor (type 9) for a TSS at `base` of `limit`. */
export function tssDescriptor64(base: bigint, limit = 0x67): [bigint, bigint] {
  const lo =
    BigInt(limit & 0xffff) |
    ((base & 0xffffffn) << 16n) |
    (0x89n << 40n) | // P=1, DPL 0, type 9
    (BigInt((limit >> 16) & 0xf) << 48n) |
    (((base >> 24n) & 0xffn) << 56n);
  return [lo, (base >> 32n) & 0xffffffffn];
}

/** A 32-bit available TSS descriptor (type 9). */
export function tssDescriptor32(base: number, limit = 0x67): bigint {
  const b = BigInt(base >>> 0);
  return BigInt(limit & 0xffff) | ((b & 0xffffffn) << 16n) | (0x89n << 40n) | (BigInt((limit >> 16) & 0xf) << 48n) | (((b >> 24n) & 0xffn) << 56n);
}

/** Options of an IDT gate. */
export interface GateOptions {
  selector?: number;
  /** IST index 1..7 (64-bit gates only); 0 = no IST. */
  ist?: number;
  /** 0xe interrupt gate (default), 0xf trap gate, 0x5 task gate (32-bit). */
  type?: number;
  dpl?: number;
  present?: boolean;
}

/** The 16 bytes of a 64-bit IDT gate for a handler at `offset`. */
export function gate64(offset: bigint, o: GateOptions = {}): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, Number(offset & 0xffffn), true);
  dv.setUint16(2, o.selector ?? 0x08, true);
  b[4] = (o.ist ?? 0) & 7;
  b[5] = ((o.present ?? true) ? 0x80 : 0) | (((o.dpl ?? 0) & 3) << 5) | ((o.type ?? 0xe) & 0xf);
  dv.setUint16(6, Number((offset >> 16n) & 0xffffn), true);
  dv.setUint32(8, Number((offset >> 32n) & 0xffffffffn), true);
  return b;
}

/** The 8 bytes of a 32-bit IDT gate (interrupt 0xe, trap 0xf, or task 0x5 with `selector` = the TSS). */
export function gate32(offset: number, o: GateOptions = {}): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  const type = o.type ?? 0xe;
  dv.setUint16(0, type === 0x5 ? 0 : offset & 0xffff, true);
  dv.setUint16(2, o.selector ?? 0x08, true);
  b[5] = ((o.present ?? true) ? 0x80 : 0) | (((o.dpl ?? 0) & 3) << 5) | (type & 0xf);
  dv.setUint16(6, type === 0x5 ? 0 : (offset >>> 16) & 0xffff, true);
  return b;
}

/** A 64-bit TSS (104 bytes): RSP0-2 and IST1-7. */
export function tss64(o: { rsp?: bigint[]; ist?: bigint[] } = {}): Uint8Array {
  const b = new Uint8Array(0x68);
  const dv = new DataView(b.buffer);
  (o.rsp ?? []).forEach((v, i) => dv.setBigUint64(4 + i * 8, v, true));
  (o.ist ?? []).forEach((v, i) => dv.setBigUint64(0x24 + i * 8, v, true));
  dv.setUint16(0x66, 0x68, true); // I/O map base past the limit: no I/O bitmap
  return b;
}
