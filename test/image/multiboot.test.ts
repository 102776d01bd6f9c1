/**
 * Multiboot ELF32 images: the ELF header and program headers byte for byte, the multiboot header
 * where QEMU looks for it, segments at page-congruent offsets, what is refused, and segments
 * gathered from a SparseMemory.
 */
import { describe, expect, it } from 'vitest';
import { MULTIBOOT, MultibootError, buildMultibootElf, findMultibootHeader, segmentsFromMemory, type MultibootErrorCode } from '../../src/image/multiboot.js';
import { SparseMemory } from '../../src/image/sparseMemory.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function elf(): Uint8Array {
  return buildMultibootElf({
    entry: 0x100010,
    segments: [
      { pa: 0x200000, bytes: new Uint8Array([1, 2, 3, 4]), memSize: 0x3000, execute: false },
      { pa: 0x100000, bytes: new Uint8Array(0x20).fill(0x90), write: false },
    ],
  });
}

describe('buildMultibootElf', () => {
  it('writes an ELF32 i386 executable header', () => {
    const f = elf();
    expect(hex(f.subarray(0, 52))).toBe(
      [
        '7f454c46010101000000000000000000', // e_ident: ELF, 32-bit, little-endian, version 1
        '0200', // ET_EXEC
        '0300', // EM_386 (QEMU refuses EM_X86_64)
        '01000000', // e_version
        '10001000', // e_entry 0x100010
        '34000000', // e_phoff 52
        '00000000', // e_shoff
        '00000000', // e_flags
        '3400', // e_ehsize
        '2000', // e_phentsize
        '0200', // e_phnum
        '2800', // e_shentsize
        '0000', // e_shnum
        '0000', // e_shstrndx
      ].join(''),
    );
  });

  it('writes one PT_LOAD per segment, sorted by address, VA = PA, with rights and bss', () => {
    const f = elf();
    expect(hex(f.subarray(52, 52 + 64))).toBe(
      [
        // text: offset 0x1000, 0x100000, filesz = memsz = 0x20, flags R+X, align 0x1000
        '01000000', '00100000', '00001000', '00001000', '20000000', '20000000', '05000000', '00100000',
        // data: offset 0x2000, 0x200000, filesz 4, memsz 0x3000, flags R+W
        '01000000', '00200000', '00002000', '00002000', '04000000', '00300000', '06000000', '00100000',
      ].join(''),
    );
    expect(hex(f.subarray(0x1000, 0x1020))).toBe('90'.repeat(0x20));
    expect(hex(f.subarray(0x2000))).toBe('01020304');
    expect(f.length).toBe(0x2004);
  });

  it('puts the multiboot header right after the program headers, where QEMU finds it', () => {
    const f = elf();
    expect(hex(f.subarray(116, 128))).toBe('02b0ad1b' + '03000000' + 'fb4f52e4'); // magic, flags 3, checksum
    expect(findMultibootHeader(f)).toEqual({ offset: 116, flags: MULTIBOOT.pageAlign | MULTIBOOT.memoryInfo });
  });

  it('keeps file offsets congruent to addresses modulo 4 KiB', () => {
    const f = buildMultibootElf({ entry: 0x100123, segments: [{ pa: 0x100123, bytes: new Uint8Array([0xf4]) }] });
    const dv = new DataView(f.buffer);
    expect(dv.getUint32(52 + 4, true)).toBe(0x1123);
    expect(f[0x1123]).toBe(0xf4);
  });
});

describe('findMultibootHeader', () => {
  it('looks only at 4-aligned offsets in the first 8 KiB and checks the checksum', () => {
    const file = new Uint8Array(0x3000);
    const dv = new DataView(file.buffer);
    const put = (at: number, flags: number, sum = (-(MULTIBOOT.headerMagic + flags)) >>> 0) => {
      dv.setUint32(at, MULTIBOOT.headerMagic, true);
      dv.setUint32(at + 4, flags, true);
      dv.setUint32(at + 8, sum, true);
    };
    put(0x2000, 0); // past the 8 KiB window
    expect(findMultibootHeader(file)).toBeNull();
    put(0x102, 0); // misaligned
    put(0x200, 2, 0x12345678); // bad checksum
    expect(findMultibootHeader(file)).toBeNull();
    put(0x1fd0, 2); // the last offset QEMU reads (8192 - 48)
    expect(findMultibootHeader(file)).toEqual({ offset: 0x1fd0, flags: 2 });
    put(0x400, 1);
    expect(findMultibootHeader(file)).toEqual({ offset: 0x400, flags: 1 });
  });
});

describe('what buildMultibootElf refuses', () => {
  const refuses = (code: MultibootErrorCode, message: string, kernel: Parameters<typeof buildMultibootElf>[0]) => {
    let error: unknown;
    try {
      buildMultibootElf(kernel);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MultibootError);
    expect((error as MultibootError).code).toBe(code);
    expect((error as MultibootError).message).toBe(message);
  };
  const b = (n: number) => new Uint8Array(n);

  it('overlapping segments', () => {
    refuses('E_OVERLAP', 'segment at 0x100800 overlaps the one ending at 0x101000', {
      entry: 0x100000,
      segments: [{ pa: 0x100000, bytes: b(0x1000) }, { pa: 0x100800, bytes: b(1) }],
    });
    refuses('E_OVERLAP', 'segment at 0x101000 overlaps the one ending at 0x102000', {
      entry: 0x100000,
      segments: [{ pa: 0x100000, bytes: b(0x10), memSize: 0x2000 }, { pa: 0x101000, bytes: b(1) }],
    });
  });

  it('segments below 1 MiB or past 4 GiB, or smaller in memory than in the file', () => {
    refuses('E_SEGMENT', "segment at 0x9000 is below 1 MiB, where the BIOS, option ROMs and QEMU's multiboot information live", {
      entry: 0x9000,
      segments: [{ pa: 0x9000, bytes: b(1) }],
    });
    refuses('E_SEGMENT', 'segment at 0xfffff000 (0x2000 bytes) ends past 4 GiB', { entry: 0xfffff000, segments: [{ pa: 0xfffff000, bytes: b(0x2000) }] });
    refuses('E_SEGMENT', 'segment at 0x100000: memSize must be at least its 16 bytes', { entry: 0x100000, segments: [{ pa: 0x100000, bytes: b(16), memSize: 8 }] });
  });

  it('an entry point outside every executable segment', () => {
    refuses('E_ENTRY', 'the entry point 0x300000 is not inside an executable segment', { entry: 0x300000, segments: [{ pa: 0x100000, bytes: b(1) }] });
    refuses('E_ENTRY', 'the entry point 0x100000 is not inside an executable segment', {
      entry: 0x100000,
      segments: [{ pa: 0x100000, bytes: b(1), execute: false }],
    });
  });

  it('more segments than fit before the header in the first 8 KiB', () => {
    const segments = Array.from({ length: 253 }, (_, i) => ({ pa: 0x100000 + i * 0x1000, bytes: b(1) }));
    refuses('E_TOO_MANY', '253 segments push the multiboot header past the first 8 KiB of the file', { entry: 0x100000, segments });
    expect(findMultibootHeader(buildMultibootElf({ entry: 0x100000, segments: segments.slice(0, 252) }))?.offset).toBe(52 + 252 * 32);
  });
});

describe('segmentsFromMemory', () => {
  it('merges touching written frames and keeps to the range asked for', () => {
    const mem = new SparseMemory(16 << 20);
    mem.write(0x100000, new Uint8Array([0xaa]));
    mem.write(0x101fff, new Uint8Array([0xbb]));
    mem.write(0x110000, new Uint8Array([0xcc]));
    mem.write(0x900000, new Uint8Array([0xdd]));
    const all = segmentsFromMemory(mem);
    expect(all.map((s) => [s.pa, s.bytes.length])).toEqual([
      [0x100000, 0x2000],
      [0x110000, 0x1000],
      [0x900000, 0x1000],
    ]);
    expect([all[0]!.bytes[0], all[0]!.bytes[0x1fff], all[1]!.bytes[0]]).toEqual([0xaa, 0xbb, 0xcc]);
    expect(segmentsFromMemory(mem, 0x101000, 0x900000).map((s) => s.pa)).toEqual([0x101000, 0x110000]);
  });
});
