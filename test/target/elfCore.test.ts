import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildElfCore } from '../../src/image/elfCore.js';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import {
  EFER_INFERRED_NOTE,
  coreCpuState,
  coreCpus,
  decodePrStatus,
  decodeQemuCpuState,
  parseElfCore,
  physicalExtents,
  type CoreFile,
  type ElfLoad,
} from '../../src/target/elfCore.js';
import { TargetError } from '../../src/target/target.js';

/** A CoreFile over bytes in memory. */
const fileOf = (b: Uint8Array): CoreFile => ({ size: b.length, read: (o, l) => b.subarray(o, Math.min(o + l, b.length)) });

/** What parsing `b` throws: its TargetError code and message, or 'ok'. */
function outcome(b: Uint8Array): string {
  try {
    coreCpuState(parseElfCore(fileOf(b)));
    return 'ok';
  } catch (e) {
    if (e instanceof TargetError) return `${e.code}: ${e.message}`;
    throw e;
  }
}

function cpu64(): CpuState {
  return {
    cr0: CR0.PG | CR0.WP | CR0.PE,
    cr2: 0x42n,
    cr3: 0x5000n,
    cr4: CR4.PAE,
    efer: EFER.LME | EFER.LMA | EFER.NXE,
    rip: 0xffffffff80001000n,
    rsp: 0xffffffff80010000n,
    rflags: 0x202n,
    gpr: { rax: 1n, rcx: 3n, r9: 9n },
    cs: { selector: 0x08, base: 0n, limit: 0xffffffff, flags: 0xa09b00 },
    gdtr: { base: 0x6000n, limit: 0x2f },
    idtr: { base: 0x7000n, limit: 0xfff },
    notes: [],
  };
}

/** A small 64-bit core (0x2000 bytes of memory) for cutting and fuzzing. */
function smallCore(): Buffer {
  const mem = new SparseMemory(0x2000);
  mem.write64(0x1000, 0x1003n);
  return buildElfCore(mem, cpu64());
}

/** Offsets in the small core's headers (see test/image/elfCore.test.ts for the layout). */
const AT = { phoff: 0x20, phnum: 0x38, note: 0xc0, load: 0xc0 + 56, notes: 0x130, memory: 0x460 } as const;

describe('parseElfCore', () => {
  it('reads the class, machine, PT_LOADs and notes of a core', () => {
    const core = parseElfCore(fileOf(smallCore()));
    expect(core.elfClass).toBe(64);
    expect(core.machine).toBe(62);
    expect(core.loads).toEqual([{ index: 1, paddr: 0, memsz: 0x2000, offset: AT.memory, filesz: 0x2000 }]);
    expect(core.notes.map((n) => [n.name, n.type, n.desc.length])).toEqual([
      ['CORE', 1, 336],
      ['QEMU', 0, 440],
    ]);
  });

  it('accepts e_ehsize 8, as QEMU 7.2 writes it', () => {
    const b = smallCore();
    b.writeUInt16LE(8, 0x34);
    expect(outcome(b)).toBe('ok');
  });

  it('reads the program header count from section 0 when e_phnum is PN_XNUM', () => {
    const b = smallCore();
    b.writeUInt16LE(0xffff, AT.phnum);
    b.writeUInt32LE(2, 0x40 + 44); // sh_info of section 0
    expect(parseElfCore(fileOf(b)).loads).toHaveLength(1);
    b.writeUInt32LE(1000, 0x40 + 44);
    expect(outcome(b)).toMatch(/^E_FORMAT: the 1000 program headers at 0xc0 run past the end of the file/);
    b.writeUInt32LE(0x7fffffff, 0x40 + 44);
    expect(outcome(b)).toBe('E_FORMAT: 2147483647 program headers: more than any QEMU core has (64 MiB of them)');
  });

  it('ignores p_offset when p_filesz is 0 (QEMU writes -1 there for memory it does not store)', () => {
    const b = smallCore();
    b.writeBigUInt64LE(0xffffffffffffffffn, AT.load + 8);
    b.writeBigUInt64LE(0n, AT.load + 32);
    const core = parseElfCore(fileOf(b));
    expect(core.loads).toEqual([{ index: 1, paddr: 0, memsz: 0x2000, offset: 0, filesz: 0 }]);
  });

  it('says what is wrong, in one line, for each kind of bad input', () => {
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['wrong magic', (b) => (b.write('\x7fELG', 0, 'latin1'), b), /not an ELF file/],
      ['unknown class', (b) => ((b[4] = 3), b), /unknown ELF class 3/],
      ['big-endian', (b) => ((b[5] = 2), b), /little-endian/],
      ['not a core', (b) => (b.writeUInt16LE(2, 16), b), /not a core file: e_type is 2.*--elf/],
      ['not x86', (b) => (b.writeUInt16LE(183, 18), b), /not an x86 core: e_machine is 183/],
      ['e_phoff past the end', (b) => (b.writeBigUInt64LE(0x100000n, AT.phoff), b), /program headers at 0x100000 run past the end/],
      ['e_phoff beyond 2^53', (b) => (b.writeBigUInt64LE(1n << 60n, AT.phoff), b), /e_phoff is 0x1000000000000000, beyond/],
      ['no program headers', (b) => (b.writeUInt16LE(0, AT.phnum), b), /no program headers/],
      ['bad e_phentsize', (b) => (b.writeUInt16LE(32, 0x36), b), /e_phentsize is 32/],
      ['PT_LOAD past the end', (b) => (b.writeBigUInt64LE(0x3000n, AT.load + 32), b.writeBigUInt64LE(0x3000n, AT.load + 40), b), /program header 1 \(PT_LOAD\) needs file bytes 0x460-0x3460 but the file ends at 0x246b: the dump is truncated/],
      ['filesz > memsz', (b) => (b.writeBigUInt64LE(0x1000n, AT.load + 40), b), /p_filesz 0x2000 is larger than p_memsz 0x1000/],
      ['PA past 52 bits', (b) => (b.writeBigUInt64LE(0xffffffffff000n, AT.load + 24), b), /goes past 52 bits/],
      ['no PT_LOAD', (b) => (b.writeUInt32LE(6, AT.load), b), /no PT_LOAD segment/],
      ['PT_NOTE past the end', (b) => (b.writeBigUInt64LE(0x2400n, AT.note + 8), b), /program header 0 \(PT_NOTE\) needs file bytes 0x2400-0x2730/],
      ['note descsz past its segment', (b) => (b.writeUInt32LE(0x1000, AT.notes + 4), b), /the note at \+0x0 \(name 5 bytes, descriptor 4096 bytes\) runs past the end of its segment/],
      ['note namesz past its segment', (b) => (b.writeUInt32LE(0xffffffff, AT.notes + 356), b), /the note at \+0x164 .* runs past the end/],
      ['cut-off note header', (b) => (b.writeBigUInt64LE(0x330n - 8n + 0x10n, AT.note + 32), b), /note header at \+0x330 is cut off/],
      ['QEMU note size lies', (b) => (b.writeUInt32LE(0x1000, AT.notes + 356 + 20 + 4), b), /QEMU CPU note says it has 4096 bytes/],
      ['section past the end', (b) => (b.writeBigUInt64LE(0x3000n, 0x80 + 24), b), /section 1 needs file bytes 0x3000-0x300b/],
    ];
    for (const [what, patch, message] of cases) {
      const text = outcome(patch(smallCore()));
      expect(text, what).toMatch(/^E_FORMAT: /);
      expect(text, what).toMatch(message);
      expect(text, what).not.toContain('\n');
    }
  });

  it('rejects the core cut at every offset from the magic on: the last bytes are the .shstrtab', () => {
    const full = smallCore();
    const seen = new Set<string>();
    for (let cut = 4; cut < full.length; cut++) {
      const text = outcome(full.subarray(0, cut));
      expect(text.startsWith('E_FORMAT: '), `cut at ${cut}: ${text}`).toBe(true);
      seen.add(text.replace(/0x[0-9a-f]+|\d+/g, 'N'));
    }
    expect(seen.size).toBeGreaterThan(3); // header, program headers, notes, memory, section each say so
  });

  it('never throws anything but E_FORMAT on corrupted headers and notes', () => {
    const base = smallCore();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: AT.memory - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (edits) => {
          const b = Buffer.from(base);
          for (const [at, v] of edits) b[at] = v;
          let core;
          try {
            core = parseElfCore(fileOf(b));
            coreCpuState(core);
          } catch (e) {
            expect(e).toBeInstanceOf(TargetError);
            expect((e as TargetError).code).toBe('E_FORMAT');
            return;
          }
          for (const x of physicalExtents(core.loads)) expect(x.end).toBeGreaterThan(x.start);
        },
      ),
      { numRuns: 3000, seed: 0x5eed },
    );
  });
});

describe('physicalExtents', () => {
  const load = (paddr: number, memsz: number, offset: number, filesz = memsz): ElfLoad => ({ index: 0, paddr, memsz, offset, filesz });

  it('merges adjacent segments stored back to back, as QEMU splits RAM at 0xc0000 and 0xe0000', () => {
    expect(physicalExtents([load(0, 0xc0000, 0x480), load(0xc0000, 0x20000, 0xc0480), load(0xfffc0000, 0x40000, 0xe0480)])).toEqual([
      { start: 0, end: 0xe0000, offset: 0x480 },
      { start: 0xfffc0000, end: 0x100000000, offset: 0xe0480 },
    ]);
  });

  it('keeps a stored segment and a zero-filled tail apart, and stored bytes win where segments overlap', () => {
    const ex = physicalExtents([load(0x1000, 0x4000, 0x100, 0x1000), load(0x3000, 0x1000, 0x9000), load(0x3800, 0x1000, 0xa000)]);
    expect(ex).toEqual([
      { start: 0x1000, end: 0x2000, offset: 0x100 },
      { start: 0x2000, end: 0x3000, offset: null },
      { start: 0x3000, end: 0x4000, offset: 0x9000 },
      { start: 0x4000, end: 0x4800, offset: 0xa800 },
      { start: 0x4800, end: 0x5000, offset: null },
    ]);
  });

  it('handles 50,000 overlapping segments in one pass (sorted, disjoint, nothing lost)', () => {
    // Even segments store nothing (p_filesz 0), odd ones store everything: stored bytes win.
    const loads = Array.from({ length: 50_000 }, (_, i) => load(i * 16, 0x100000, 0x1000, i % 2 ? 0x100000 : 0));
    const ex = physicalExtents(loads);
    expect(ex[0]).toEqual({ start: 0, end: 16, offset: null });
    expect(ex[1]).toEqual({ start: 16, end: 16 + 0x100000, offset: 0x1000 });
    for (let i = 1; i < ex.length; i++) expect(ex[i]!.start).toBe(ex[i - 1]!.end);
    expect(ex.at(-1)!.end).toBe(16 * 49_999 + 0x100000);
    expect(ex.every((e) => e.offset !== null || e.end <= 16)).toBe(true);
  });
});

describe('CPU notes', () => {
  it('decodes x86_64_elf_prstatus and x86_elf_prstatus by their C layouts', () => {
    const d64 = new Uint8Array(336);
    const v64 = new DataView(d64.buffer);
    v64.setUint32(32, 3, true);
    v64.setBigUint64(112 + 16 * 8, 0xffffffff81000000n, true); // rip
    v64.setBigUint64(112 + 21 * 8, 0x7fff0000n, true); // fs_base
    expect(decodePrStatus(62, d64)).toMatchObject({ pid: 3, regs: { rip: 0xffffffff81000000n, fs_base: 0x7fff0000n, rax: 0n } });
    const d32 = new Uint8Array(144);
    const v32 = new DataView(d32.buffer);
    v32.setUint32(24, 2, true);
    v32.setUint32(72 + 24, 0xaaaa, true); // eax
    v32.setUint32(72 + 48, 0xc0100000, true); // eip
    v32.setUint16(72 + 52, 0x60, true); // cs
    v32.setUint32(72 + 60, 0xc0008000, true); // esp
    expect(decodePrStatus(3, d32)).toMatchObject({ pid: 2, regs: { rax: 0xaaaan, rip: 0xc0100000n, cs: 0x60n, rsp: 0xc0008000n } });
    expect(() => decodePrStatus(62, d64.subarray(0, 200))).toThrow(/NT_PRSTATUS note of 200 bytes: x86_64_elf_prstatus has 336/);
    expect(() => decodePrStatus(3, d32.subarray(0, 100))).toThrow(/x86_elf_prstatus has 144/);
  });

  it('decodes QEMUCPUState with and without kernel_gs_base', () => {
    const d = new Uint8Array(440);
    const v = new DataView(d.buffer);
    v.setUint32(0, 1, true);
    v.setUint32(4, 432, true);
    v.setBigUint64(136, 0xfff0n, true);
    v.setUint32(152 + 8, 0x9b00, true); // cs.flags
    v.setBigUint64(416, 0x3000n, true); // cr3
    v.setBigUint64(432, 0xffff888000000000n, true);
    const s432 = decodeQemuCpuState(d);
    expect(s432).toMatchObject({ version: 1, size: 432, rip: 0xfff0n, segments: { cs: { flags: 0x9b00 } } });
    expect(s432.cr[3]).toBe(0x3000n);
    expect(s432.kernelGsBase).toBeUndefined();
    v.setUint32(4, 440, true);
    expect(decodeQemuCpuState(d).kernelGsBase).toBe(0xffff888000000000n);
    expect(() => decodeQemuCpuState(d.subarray(0, 400))).toThrow(/at least 432/);
  });

  it('infers EFER from CR0.PG, CR4.PAE and a 64-bit CS, and says so', () => {
    const cpu = coreCpuState(parseElfCore(fileOf(smallCore())));
    expect(cpu.efer).toBe(EFER.LME | EFER.LMA | EFER.NXE);
    expect(cpu.notes).toEqual([EFER_INFERRED_NOTE]);
    expect(EFER_INFERRED_NOTE).toBe(
      "EFER is not in QEMU's ELF core: inferred LME|LMA|NXE from CR0.PG, CR4.PAE and the 64-bit CS; pass --efer to override",
    );
  });

  it('pairs the n-th NT_PRSTATUS with the n-th QEMU note', () => {
    const a = cpu64();
    const b = { ...cpu64(), rip: 0x1234n };
    const core = parseElfCore(fileOf(buildElfCore(new SparseMemory(0x1000), a, { cpus: [a, b, a] })));
    const cpus = coreCpus(core);
    expect(cpus.map((c) => [c.prstatus?.pid, c.qemu?.rip])).toEqual([
      [1, 0xffffffff80001000n],
      [2, 0x1234n],
      [3, 0xffffffff80001000n],
    ]);
    expect(coreCpuState(core).notes[0]).toBe('the core holds 3 CPUs: these registers are the first one\'s');
  });
});
