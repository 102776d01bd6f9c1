/**
 * Symbols from a kernel ELF (`--elf FILE`): names to addresses for the command line, and
 * addresses back to `symbol+offset` for the output. Reads .symtab (and .dynsym) of ELF32 and ELF64,
 * little-endian.
 */
import { readFile } from 'node:fs/promises';

/** Error for an ELF file that cannot be read as one; `code` is stable. */
export class ElfSymbolError extends Error {
  readonly code = 'E_ELF';
  constructor(message: string) {
    super(message);
    this.name = 'ElfSymbolError';
  }
}

/** One symbol. */
export interface ElfSymbol {
  name: string;
  value: bigint;
  size: bigint;
  /** STT_FUNC (2) or STT_OBJECT (1), etc. */
  type: number;
}

/** The symbols of one ELF file. */
export class SymbolTable {
  private readonly byName = new Map<string, ElfSymbol>();
  private readonly sorted: ElfSymbol[];

  constructor(symbols: readonly ElfSymbol[]) {
    for (const s of symbols) {
      const prev = this.byName.get(s.name);
      // Prefer functions and objects over section/file/notype symbols of the same name.
      if (!prev || (prev.type !== 1 && prev.type !== 2 && (s.type === 1 || s.type === 2))) this.byName.set(s.name, s);
    }
    this.sorted = symbols.filter((s) => s.type === 1 || s.type === 2 || s.type === 0).sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  }

  /** Number of named symbols. */
  get size(): number {
    return this.byName.size;
  }

  /** The address of `name`, or undefined. */
  lookup(name: string): bigint | undefined {
    return this.byName.get(name)?.value;
  }

  /** `name+0xoff` for the symbol containing (or nearest below, within 1 MiB) `addr`, or undefined. */
  symbolize(addr: bigint): string | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    let best: ElfSymbol | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.sorted[mid]!;
      if (s.value <= addr) {
        best = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (!best || best.value === 0n) return undefined;
    const off = addr - best.value;
    if (best.size > 0n ? off >= best.size : off >= 1n << 20n) return undefined;
    return off === 0n ? best.name : `${best.name}+0x${off.toString(16)}`;
  }
}

/** Parses the symbols of an ELF image held in `buf`. Throws ElfSymbolError on anything malformed. */
export function parseElfSymbols(buf: Uint8Array, name = 'the ELF file'): SymbolTable {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (off: number, len: number, what: string): void => {
    if (off < 0 || len < 0 || off + len > buf.length) throw new ElfSymbolError(`${name}: truncated (${what} at 0x${off.toString(16)} lies past the end)`);
  };
  need(0, 16, 'the ELF identification');
  if (dv.getUint32(0) !== 0x7f454c46) throw new ElfSymbolError(`${name} is not an ELF file (no \\x7fELF magic)`);
  const cls = buf[4];
  if (cls !== 1 && cls !== 2) throw new ElfSymbolError(`${name}: unknown ELF class ${cls}`);
  if (buf[5] !== 1) throw new ElfSymbolError(`${name}: big-endian ELF is not an x86 kernel`);
  const is64 = cls === 2;
  need(0, is64 ? 64 : 52, 'the ELF header');
  const u16 = (o: number): number => dv.getUint16(o, true);
  const u32 = (o: number): number => dv.getUint32(o, true);
  const addr = (o: number): bigint => (is64 ? dv.getBigUint64(o, true) : BigInt(dv.getUint32(o, true)));
  const off = (o: number): number => Number(addr(o));
  const shoff = off(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  if (shoff === 0 || shnum === 0) throw new ElfSymbolError(`${name} has no section headers, so no symbol table (was it stripped?)`);
  if (shentsize < (is64 ? 64 : 40)) throw new ElfSymbolError(`${name}: section header size ${shentsize} is too small`);
  need(shoff, shentsize * shnum, 'the section headers');
  const section = (i: number): { type: number; offset: number; size: number; link: number; entsize: number } => {
    const b = shoff + i * shentsize;
    return is64
      ? { type: u32(b + 4), offset: off(b + 0x18), size: off(b + 0x20), link: u32(b + 0x28), entsize: off(b + 0x38) }
      : { type: u32(b + 4), offset: u32(b + 0x10), size: u32(b + 0x14), link: u32(b + 0x18), entsize: u32(b + 0x24) };
  };
  const symbols: ElfSymbol[] = [];
  let tables = 0;
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== 2 && s.type !== 11) continue; // SHT_SYMTAB, SHT_DYNSYM
    tables++;
    const entsize = s.entsize || (is64 ? 24 : 16);
    need(s.offset, s.size, 'a symbol table');
    if (s.link >= shnum) throw new ElfSymbolError(`${name}: a symbol table links to section ${s.link}, which does not exist`);
    const strtab = section(s.link);
    need(strtab.offset, strtab.size, 'a string table');
    const strings = buf.subarray(strtab.offset, strtab.offset + strtab.size);
    for (let p = s.offset; p + entsize <= s.offset + s.size; p += entsize) {
      const nameOff = u32(p);
      const info = is64 ? buf[p + 4]! : buf[p + 12]!;
      const shndx = is64 ? u16(p + 6) : u16(p + 14);
      const value = is64 ? dv.getBigUint64(p + 8, true) : BigInt(u32(p + 4));
      const size = is64 ? dv.getBigUint64(p + 16, true) : BigInt(u32(p + 8));
      if (nameOff === 0 || shndx === 0 || nameOff >= strings.length) continue;
      let end = nameOff;
      while (end < strings.length && strings[end] !== 0) end++;
      const symName = Buffer.from(strings.subarray(nameOff, end)).toString('latin1');
      if (symName) symbols.push({ name: symName, value, size, type: info & 0xf });
    }
  }
  if (tables === 0) throw new ElfSymbolError(`${name} has no symbol table (was it stripped?)`);
  return new SymbolTable(symbols);
}

/** Reads and parses the symbols of the ELF file at `path`. */
export async function loadElfSymbols(path: string): Promise<SymbolTable> {
  return parseElfSymbols(await readFile(path), path);
}
