/**
 * A minimal little-endian ELF64 holding only a symbol table (sections: null, .symtab, .strtab,
 * .shstrtab), for scripts that name addresses by symbol with --elf.
 */

/** Builds the ELF with `symbols` as STT_FUNC symbols of section 1. */
export function elfWithSymbols(symbols: Readonly<Record<string, bigint>>): Buffer {
  const names = Object.keys(symbols);
  let strtab = '\0';
  const nameOffsets = names.map((n) => {
    const off = strtab.length;
    strtab += n + '\0';
    return off;
  });
  const str = Buffer.from(strtab, 'latin1');
  const shstr = Buffer.from('\0.symtab\0.strtab\0.shstrtab\0', 'latin1');
  const symtab = Buffer.alloc(24 * (names.length + 1));
  names.forEach((n, i) => {
    const p = 24 * (i + 1);
    symtab.writeUInt32LE(nameOffsets[i]!, p);
    symtab[p + 4] = 0x12; // STB_GLOBAL, STT_FUNC
    symtab.writeUInt16LE(1, p + 6);
    symtab.writeBigUInt64LE(symbols[n]!, p + 8);
    symtab.writeBigUInt64LE(1n, p + 16);
  });
  const symOff = 64;
  const strOff = symOff + symtab.length;
  const shstrOff = strOff + str.length;
  const shOff = (shstrOff + shstr.length + 7) & ~7;
  const file = Buffer.alloc(shOff + 4 * 64);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  file.writeUInt16LE(2, 16); // ET_EXEC
  file.writeUInt16LE(62, 18); // x86-64
  file.writeUInt32LE(1, 20);
  file.writeBigUInt64LE(BigInt(shOff), 40);
  file.writeUInt16LE(64, 52);
  file.writeUInt16LE(64, 58);
  file.writeUInt16LE(4, 60);
  file.writeUInt16LE(3, 62);
  symtab.copy(file, symOff);
  str.copy(file, strOff);
  shstr.copy(file, shstrOff);
  const section = (i: number, name: number, type: number, off: number, size: number, link = 0, entsize = 0): void => {
    const p = shOff + 64 * i;
    file.writeUInt32LE(name, p);
    file.writeUInt32LE(type, p + 4);
    file.writeBigUInt64LE(BigInt(off), p + 24);
    file.writeBigUInt64LE(BigInt(size), p + 32);
    file.writeUInt32LE(link, p + 40);
    file.writeUInt32LE(1, p + 44);
    file.writeBigUInt64LE(BigInt(entsize), p + 56);
  };
  section(1, 1, 2, symOff, symtab.length, 2, 24); // .symtab -> .strtab
  section(2, 9, 3, strOff, str.length); // .strtab
  section(3, 17, 3, shstrOff, shstr.length); // .shstrtab
  return file;
}
