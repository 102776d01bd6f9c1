/**
 * The code of a kernel ELF (`--elf FILE`): its executable PT_LOAD segments at their virtual
 * addresses, so the MOV-to-CR3 sites can be found in the file instead of in guest memory (no reads
 * through the gdbstub, and code the current tables do not map yet is covered too). ELF32 and ELF64,
 * little-endian.
 */
import { readFile } from 'node:fs/promises';
import { candidateStarts, confirmSite, type CodeSite, type SiteKind } from './sites.js';

/** Error for a file that is not an ELF this reader handles; `code` is stable. */
export class ElfCodeError extends Error {
  readonly code = 'E_ELF';
  constructor(message: string) {
    super(message);
    this.name = 'ElfCodeError';
  }
}

/** One executable segment. */
export interface CodeSegment {
  va: bigint;
  bytes: Uint8Array;
}

/** The executable segments of an ELF image. Throws ElfCodeError for something else. */
export function elfCode(file: Uint8Array, what = 'the ELF file'): CodeSegment[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 52 || view.getUint32(0, false) !== 0x7f454c46) throw new ElfCodeError(`${what} is not an ELF file (no \\x7fELF magic)`);
  const is64 = file[4] === 2;
  if (file[4] !== 1 && !is64) throw new ElfCodeError(`${what}: unknown ELF class ${file[4]}`);
  if (file[5] !== 1) throw new ElfCodeError(`${what}: only little-endian ELF files are read`);
  const phoff = is64 ? Number(view.getBigUint64(32, true)) : view.getUint32(28, true);
  const phentsize = view.getUint16(is64 ? 54 : 42, true);
  const phnum = view.getUint16(is64 ? 56 : 44, true);
  const out: CodeSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + (is64 ? 56 : 32) > file.length) throw new ElfCodeError(`${what}: program header ${i} lies past the end of the file`);
    const type = view.getUint32(at, true);
    const flags = view.getUint32(at + (is64 ? 4 : 24), true);
    if (type !== 1 || (flags & 1) === 0) continue; // PT_LOAD with PF_X
    const offset = is64 ? Number(view.getBigUint64(at + 8, true)) : view.getUint32(at + 4, true);
    const va = is64 ? view.getBigUint64(at + 16, true) : BigInt(view.getUint32(at + 8, true));
    const filesz = is64 ? Number(view.getBigUint64(at + 32, true)) : view.getUint32(at + 16, true);
    if (offset + filesz > file.length) throw new ElfCodeError(`${what}: segment ${i} (${filesz} bytes at offset ${offset}) lies past the end of the file`);
    out.push({ va, bytes: file.subarray(offset, offset + filesz) });
  }
  return out;
}

/** Reads `path` and returns its executable segments. Throws ElfCodeError, or the file system's error. */
export async function loadElfCode(path: string): Promise<CodeSegment[]> {
  return elfCode(new Uint8Array(await readFile(path)), path);
}

/** The instructions of `kind` in `segments`, decoded with `bits`. */
export function elfSites(segments: readonly CodeSegment[], bits: 16 | 32 | 64, kind: SiteKind = 'mov-cr3'): CodeSite[] {
  const sites: CodeSite[] = [];
  for (const seg of segments) {
    for (const c of candidateStarts(seg.bytes, bits, kind)) {
      for (const s of c.starts) {
        const va = seg.va + BigInt(s);
        const ins = confirmSite(seg.bytes, s, c.opcode, bits, kind, va);
        if (ins) sites.push({ kind, va, pa: null, length: ins.length, text: ins.text, from: 'elf' });
      }
    }
  }
  return sites;
}
