import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildElfCore, writeElfCore } from '../../src/image/elfCore.js';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

/** Lower-case hex of bytes, no separators. */
const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
/** Strips the spaces and comments of an inline hex fixture. */
const fixture = (s: string): string => s.replace(/#.*$/gm, '').replace(/\s+/g, '');

const dir = mkdtempSync(join(tmpdir(), 'pagewalk-elfcore-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function longModeCpu(): CpuState {
  return {
    cr0: CR0.PG | CR0.WP | CR0.PE,
    cr2: 0xdead000n,
    cr3: 0x1000n,
    cr4: CR4.PAE,
    efer: EFER.LME | EFER.LMA | EFER.NXE,
    rip: 0xffffffff80001234n,
    rsp: 0xffff800000007ff0n,
    rflags: 0x246n,
    gpr: { rax: 0x1111n, rbx: 0x2222n, r15: 0xf15n, rdi: 0xd1n },
    cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xa09b00 },
    ss: { selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xc09300 },
    fs: { selector: 0, base: 0x7f0000001000n, limit: 0, flags: 0 },
    gdtr: { base: 0xffffffff80006000n, limit: 0x37 },
    idtr: { base: 0xffffffff80007000n, limit: 0xfff },
    tr: { selector: 0x28, base: 0xffffffff80006100n, limit: 0x67, flags: 0x8b00 },
    notes: [],
  };
}

function protectedModeCpu(): CpuState {
  return {
    ...longModeCpu(),
    cr4: CR4.PSE,
    efer: 0n,
    rip: 0xc0101234n,
    rsp: 0xc0007ff0n,
    cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xc09b00 },
  };
}

describe('buildElfCore: the layout QEMU 7.2 writes', () => {
  it('writes an ELF64 x86-64 core: header, sections, program headers, notes, memory, .shstrtab', () => {
    const mem = new SparseMemory(0x3000);
    mem.write(0x1008, new Uint8Array([0xaa, 0xbb]));
    const core = buildElfCore(mem, longModeCpu());
    // 64 + 2*64 (sections) + 2*56 (PT_NOTE, PT_LOAD) = 0x130; notes 356 + 460 = 0x330; memory at 0x460.
    expect(core.length).toBe(0x460 + 0x3000 + 11);
    expect(hexOf(core.subarray(0, 0x40))).toBe(
      fixture(`
        7f454c46 02 01 01 00 0000000000000000   # magic, ELFCLASS64, LSB, EV_CURRENT, SysV
        0400 3e00 01000000                      # ET_CORE, EM_X86_64, version
        0000000000000000                        # e_entry
        c000000000000000                        # e_phoff 0xc0: after the section headers
        4000000000000000                        # e_shoff 0x40: right after this header
        00000000                                # e_flags
        4000 3800 0200 4000 0200 0100           # e_ehsize, e_phentsize, e_phnum 2, e_shentsize, e_shnum 2, e_shstrndx 1
      `),
    );
    expect(hexOf(core.subarray(0x40, 0x80))).toBe('00'.repeat(64)); // section 0: SHT_NULL
    expect(hexOf(core.subarray(0x80, 0xc0))).toBe(
      fixture(`
        01000000 03000000 0000000000000000 0000000000000000  # name ".shstrtab" at 1, SHT_STRTAB
        6034000000000000 0b00000000000000                    # offset 0x3460 (after memory), size 11
        00000000 00000000 0000000000000000 0000000000000000
      `),
    );
    expect(hexOf(core.subarray(0xc0, 0x130))).toBe(
      fixture(`
        04000000 00000000 3001000000000000 0000000000000000 0000000000000000  # PT_NOTE at 0x130
        3003000000000000 3003000000000000 0000000000000000                    # 0x330 bytes of notes
        01000000 00000000 6004000000000000 0000000000000000 0000000000000000  # PT_LOAD at 0x460, PA 0, VA = PA
        0030000000000000 0030000000000000 0000000000000000                    # filesz = memsz = 0x3000
      `),
    );
    expect(hexOf(core.subarray(0x130, 0x144))).toBe(fixture('05000000 50010000 01000000 434f524500000000')); // "CORE", 336, NT_PRSTATUS
    expect(hexOf(core.subarray(0x130 + 356, 0x130 + 356 + 20))).toBe(fixture('05000000 b8010000 00000000 51454d5500000000')); // "QEMU", 440, type 0
    expect(hexOf(core.subarray(0x460 + 0x1008, 0x460 + 0x100a))).toBe('aabb');
    expect(core.subarray(-11).toString('latin1')).toBe('\0.shstrtab\0');
  });

  it('puts each register where x86_64_elf_prstatus and QEMUCPUState have it', () => {
    const core = buildElfCore(new SparseMemory(0x1000), longModeCpu());
    const pr = new DataView(core.buffer, core.byteOffset + 0x130 + 20, 336);
    expect(pr.getUint32(32, true)).toBe(1); // pr_pid: CPU index + 1
    const reg = (i: number): bigint => pr.getBigUint64(112 + i * 8, true);
    expect(reg(0)).toBe(0xf15n); // r15
    expect(reg(5)).toBe(0x2222n); // rbx
    expect(reg(10)).toBe(0x1111n); // rax
    expect(reg(14)).toBe(0xd1n); // rdi
    expect(reg(16)).toBe(0xffffffff80001234n); // rip
    expect(reg(17)).toBe(0x08n); // cs
    expect(reg(18)).toBe(0x246n); // eflags
    expect(reg(19)).toBe(0xffff800000007ff0n); // rsp
    expect(reg(20)).toBe(0x10n); // ss
    expect(reg(21)).toBe(0x7f0000001000n); // fs_base
    const q = new DataView(core.buffer, core.byteOffset + 0x130 + 356 + 20, 440);
    expect([q.getUint32(0, true), q.getUint32(4, true)]).toEqual([1, 440]); // version, size
    expect(q.getBigUint64(8, true)).toBe(0x1111n); // rax
    expect(q.getBigUint64(8 + 6 * 8, true)).toBe(0xffff800000007ff0n); // rsp
    expect(q.getBigUint64(136, true)).toBe(0xffffffff80001234n); // rip
    expect(q.getBigUint64(144, true)).toBe(0x246n); // rflags
    expect([q.getUint32(152, true), q.getUint32(156, true), q.getUint32(160, true)]).toEqual([0x08, 0xffffffff, 0xa09b00]); // cs
    expect(q.getBigUint64(152 + 7 * 24 + 16, true)).toBe(0xffffffff80006100n); // tr.base
    expect(q.getUint32(152 + 8 * 24 + 4, true)).toBe(0x37); // gdt.limit
    expect(q.getBigUint64(152 + 9 * 24 + 16, true)).toBe(0xffffffff80007000n); // idt.base
    expect([392, 400, 408, 416, 424].map((o) => q.getBigUint64(o, true))).toEqual([0x80010001n, 0n, 0xdead000n, 0x1000n, 0x20n]);
    expect(q.getBigUint64(432, true)).toBe(0n); // kernel_gs_base: unknown, 0
  });

  it('writes an ELF32 i386 core with x86_elf_prstatus when the CPU is not in long mode', () => {
    const core = buildElfCore(new SparseMemory(0x2000), protectedModeCpu());
    // 52 + 2*40 + 2*32 = 0xc4; notes 164 + 460 = 0x270; memory at 0x334.
    expect(core.length).toBe(0x334 + 0x2000 + 11);
    expect(hexOf(core.subarray(0, 0x34))).toBe(
      fixture(`
        7f454c46 01 01 01 00 0000000000000000   # ELFCLASS32
        0400 0300 01000000 00000000             # ET_CORE, EM_386, version, e_entry
        84000000 34000000 00000000              # e_phoff 0x84, e_shoff 0x34, e_flags
        3400 2000 0200 2800 0200 0100           # e_ehsize 52, e_phentsize 32, 2, e_shentsize 40, 2, 1
      `),
    );
    expect(hexOf(core.subarray(0x84, 0xc4))).toBe(
      fixture(`
        04000000 c4000000 00000000 00000000 70020000 70020000 00000000 00000000  # PT_NOTE
        01000000 34030000 00000000 00000000 00200000 00200000 00000000 00000000  # PT_LOAD
      `),
    );
    expect(hexOf(core.subarray(0xc4, 0xd8))).toBe(fixture('05000000 90000000 01000000 434f524500000000')); // 144 bytes
    const pr = new DataView(core.buffer, core.byteOffset + 0xc4 + 20, 144);
    expect(pr.getUint32(24, true)).toBe(1); // pid
    expect(pr.getUint32(72, true)).toBe(0x2222); // ebx
    expect(pr.getUint32(72 + 24, true)).toBe(0x1111); // eax
    expect(pr.getUint32(72 + 48, true)).toBe(0xc0101234); // eip
    expect(pr.getUint16(72 + 52, true)).toBe(0x08); // cs
    expect(pr.getUint32(72 + 56, true)).toBe(0x246); // eflags
    expect(pr.getUint32(72 + 60, true)).toBe(0xc0007ff0); // esp
    expect(pr.getUint16(72 + 64, true)).toBe(0x10); // ss
  });

  it('picks ELFCLASS64 with EM_386 when memory ends above 4 GiB, as real QEMU does for its BIOS range', () => {
    const mem = new SparseMemory(2 ** 32);
    const core = buildElfCore(mem, protectedModeCpu(), { segments: [{ start: 0, end: 0x2000 }, { start: 0xfffc0000, end: 2 ** 32 }] });
    expect(core[4]).toBe(2);
    expect(core.readUInt16LE(18)).toBe(3);
    expect(core.readUInt16LE(0x38)).toBe(3); // PT_NOTE + 2 PT_LOAD
  });

  it('stores only [start, fileEnd) of a segment and keeps p_memsz', () => {
    const mem = new SparseMemory(0x10000);
    const core = buildElfCore(mem, longModeCpu(), {
      segments: [
        { start: 0x1000, end: 0x4000, fileEnd: 0x2000 },
        { start: 0x8000, end: 0x9000 },
      ],
    });
    const ph = (i: number, field: number): bigint => core.readBigUInt64LE(0xc0 + i * 56 + field);
    const notesEnd = 0xc0 + 3 * 56 + 816;
    expect([ph(1, 8), ph(1, 24), ph(1, 32), ph(1, 40)]).toEqual([BigInt(notesEnd), 0x1000n, 0x1000n, 0x3000n]);
    expect([ph(2, 8), ph(2, 24), ph(2, 32), ph(2, 40)]).toEqual([BigInt(notesEnd + 0x1000), 0x8000n, 0x1000n, 0x1000n]);
    expect(core.length).toBe(notesEnd + 0x2000 + 11);
  });

  it('writes one NT_PRSTATUS per CPU, then one QEMU note per CPU', () => {
    const a = longModeCpu();
    const b = { ...longModeCpu(), rip: 0xffffffff80009999n };
    const core = buildElfCore(new SparseMemory(0x1000), a, { cpus: [a, b] });
    const notesAt = 0xc0 + 2 * 56;
    const kinds = [0, 356, 712, 712 + 460].map((o) => core.subarray(notesAt + o + 12, notesAt + o + 16).toString('latin1'));
    expect(kinds).toEqual(['CORE', 'CORE', 'QEMU', 'QEMU']);
    expect(core.readUInt32LE(notesAt + 356 + 20 + 32)).toBe(2); // the second CPU's pid
    expect(core.readBigUInt64LE(notesAt + 712 + 460 + 20 + 136)).toBe(0xffffffff80009999n);
  });

  it('refuses cores QEMU could not write', () => {
    const mem = new SparseMemory(0x2000);
    expect(() => buildElfCore(mem, longModeCpu(), { class: 32 })).toThrow(/ELFCLASS64/);
    expect(() => buildElfCore(mem, protectedModeCpu(), { segments: [{ start: 0, end: 0x3000 }] })).toThrow(RangeError);
    expect(() => buildElfCore(mem, protectedModeCpu(), { segments: [{ start: 0x1000, end: 0x2000, fileEnd: 0x800 }] })).toThrow(RangeError);
    expect(() => buildElfCore(mem, protectedModeCpu(), { cpus: [] })).toThrow(/at least one CPU/);
  });

  it('writeElfCore writes the same bytes as buildElfCore', async () => {
    const mem = new SparseMemory(0x40000);
    mem.write(0x21ff0, new Uint8Array(0x20).fill(0x5a)); // crosses a frame
    mem.write64(0x3fff8, 0x0123456789abcdefn);
    const opts = { segments: [{ start: 0, end: 0x10000 }, { start: 0x20000, end: 0x40000, fileEnd: 0x3f000 }] };
    const path = join(dir, 'same.core');
    await writeElfCore(mem, longModeCpu(), path, opts);
    expect(readFileSync(path).equals(buildElfCore(mem, longModeCpu(), opts))).toBe(true);
  });
});
