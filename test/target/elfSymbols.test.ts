import { describe, expect, it } from 'vitest';
import { ElfSymbolError, parseElfSymbols } from '../../src/target/elfSymbols.js';

interface Sym {
  name: string;
  value: bigint;
  size: bigint;
  type: number;
  shndx?: number;
}

/** A minimal little-endian ELF with sections: null, .symtab, .strtab, .shstrtab. */
function buildElf(is64: boolean, syms: Sym[]): Uint8Array {
  const strParts = ['\0'];
  const nameOff = syms.map((s) => {
    const off = strParts.join('').length;
    strParts.push(s.name + '\0');
    return off;
  });
  const strtab = Buffer.from(strParts.join(''), 'latin1');
  const shstr = Buffer.from('\0.symtab\0.strtab\0.shstrtab\0', 'latin1');
  const entsize = is64 ? 24 : 16;
  const symtab = Buffer.alloc(entsize * (syms.length + 1));
  syms.forEach((s, i) => {
    const p = (i + 1) * entsize;
    symtab.writeUInt32LE(nameOff[i]!, p);
    if (is64) {
      symtab[p + 4] = s.type;
      symtab.writeUInt16LE(s.shndx ?? 1, p + 6);
      symtab.writeBigUInt64LE(s.value, p + 8);
      symtab.writeBigUInt64LE(s.size, p + 16);
    } else {
      symtab.writeUInt32LE(Number(s.value), p + 4);
      symtab.writeUInt32LE(Number(s.size), p + 8);
      symtab[p + 12] = s.type;
      symtab.writeUInt16LE(s.shndx ?? 1, p + 14);
    }
  });
  const ehsize = is64 ? 64 : 52;
  const shentsize = is64 ? 64 : 40;
  const symOff = ehsize;
  const strOff = symOff + symtab.length;
  const shstrOff = strOff + strtab.length;
  const shoff = Math.ceil((shstrOff + shstr.length) / 8) * 8;
  const out = Buffer.alloc(shoff + 4 * shentsize);
  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = is64 ? 2 : 1;
  out[5] = 1;
  out[6] = 1;
  if (is64) {
    out.writeBigUInt64LE(BigInt(shoff), 0x28);
    out.writeUInt16LE(shentsize, 0x3a);
    out.writeUInt16LE(4, 0x3c);
    out.writeUInt16LE(3, 0x3e);
  } else {
    out.writeUInt32LE(shoff, 0x20);
    out.writeUInt16LE(shentsize, 0x2e);
    out.writeUInt16LE(4, 0x30);
    out.writeUInt16LE(3, 0x32);
  }
  symtab.copy(out, symOff);
  strtab.copy(out, strOff);
  shstr.copy(out, shstrOff);
  const section = (i: number, name: number, type: number, off: number, size: number, link: number, ent: number): void => {
    const b = shoff + i * shentsize;
    out.writeUInt32LE(name, b);
    out.writeUInt32LE(type, b + 4);
    if (is64) {
      out.writeBigUInt64LE(BigInt(off), b + 0x18);
      out.writeBigUInt64LE(BigInt(size), b + 0x20);
      out.writeUInt32LE(link, b + 0x28);
      out.writeBigUInt64LE(BigInt(ent), b + 0x38);
    } else {
      out.writeUInt32LE(off, b + 0x10);
      out.writeUInt32LE(size, b + 0x14);
      out.writeUInt32LE(link, b + 0x18);
      out.writeUInt32LE(ent, b + 0x24);
    }
  };
  section(1, 1, 2, symOff, symtab.length, 2, entsize);
  section(2, 9, 3, strOff, strtab.length, 0, 0);
  section(3, 17, 3, shstrOff, shstr.length, 0, 0);
  return new Uint8Array(out);
}

const SYMS: Sym[] = [
  { name: 'kmain', value: 0xffffffff80001000n, size: 0x80n, type: 2 },
  { name: 'idt', value: 0xffffffff80007000n, size: 0x1000n, type: 1 },
  { name: 'undefined_ref', value: 0n, size: 0n, type: 2, shndx: 0 },
];

describe('parseElfSymbols', () => {
  for (const is64 of [true, false]) {
    const syms = is64 ? SYMS : SYMS.map((s) => ({ ...s, value: s.value & 0xffffffffn }));
    it(`reads names and addresses from an ELF${is64 ? 64 : 32} .symtab`, () => {
      const t = parseElfSymbols(buildElf(is64, syms));
      expect(t.size).toBe(2);
      expect(t.lookup('kmain')).toBe(syms[0]!.value);
      expect(t.lookup('idt')).toBe(syms[1]!.value);
      expect(t.lookup('undefined_ref')).toBeUndefined();
    });

    it(`symbolizes addresses inside a sized symbol (ELF${is64 ? 64 : 32})`, () => {
      const t = parseElfSymbols(buildElf(is64, syms));
      expect(t.symbolize(syms[0]!.value)).toBe('kmain');
      expect(t.symbolize(syms[0]!.value + 0x14n)).toBe('kmain+0x14');
      expect(t.symbolize(syms[0]!.value + 0x80n)).toBeUndefined();
      expect(t.symbolize(0x1000n)).toBeUndefined();
    });
  }

  it('refuses files that are not ELF, truncated, or stripped, with one-line messages', () => {
    expect(() => parseElfSymbols(new Uint8Array(10), 'k.bin')).toThrow(ElfSymbolError);
    expect(() => parseElfSymbols(new Uint8Array(64), 'k.bin')).toThrow('k.bin is not an ELF file');
    const elf = buildElf(true, SYMS);
    for (let cut = 0; cut < elf.length; cut += 7) {
      let err: unknown;
      try {
        parseElfSymbols(elf.subarray(0, cut), 'k.elf');
      } catch (e) {
        err = e;
      }
      expect(err, `cut at ${cut}`).toBeInstanceOf(ElfSymbolError);
      expect((err as Error).message).not.toContain('\n');
    }
    const stripped = new Uint8Array(elf);
    new DataView(stripped.buffer).setBigUint64(0x28, 0n, true);
    expect(() => parseElfSymbols(stripped, 'k.elf')).toThrow('stripped');
  });
});
