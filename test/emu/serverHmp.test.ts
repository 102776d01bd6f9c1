/**
 * The emulator's human monitor, in QEMU 7.2's exact formats, on small tables built with the
 * PageTables builder (4 KiB, 2 MiB and 1 GiB pages, user, NX, global, PCD/PWT, a leaf with a
 * reserved bit, 5-level paging): golden text written out inline, and parsed back with
 * src/qmp/hmp.ts and src/target/mtree.ts as pagewalk parses QEMU's.
 */
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/asm/index.js';
import { HmpMonitor } from '../../src/emu/hmpCommands.js';
import { Machine } from '../../src/emu/index.js';
import { EmuSession } from '../../src/emu/session.js';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { HmpError } from '../../src/qmp/errors.js';
import { parseInfoMem, parseInfoTlb, parseXp } from '../../src/qmp/hmp.js';
import { parseMtreeFlat, systemMemory } from '../../src/target/mtree.js';

const RAM = 16 << 20;
const CODE_VA = 0xffffffff80100000n;
const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

/** A machine on tables `map` builds (plus a global read-only code page), with a data pattern at physical 0x5000. */
function monitorFor(map: (pt: PageTables) => void, la57 = false): { hmp: HmpMonitor; m: Machine } {
  const mem = new SparseMemory(RAM);
  const pt = new PageTables(mem, la57 ? '5-level' : '4-level', new FrameAllocator(0x10000, 0x80000));
  pt.map(CODE_VA, 0x100000, 4096, { global: true, write: false });
  map(pt);
  mem.write(0x100000, new Assembler(64).hlt().assemble(CODE_VA).bytes);
  mem.write(0x5000, Uint8Array.from({ length: 32 }, (_, i) => i));
  mem.write(0x5020, Uint8Array.of(0xff, 0x27, 0x5c, 0x0a, 0x41));
  mem.write64(0x232000, 0x1122334455667788n);
  const m = new Machine({
    ramSize: RAM,
    memory: mem,
    features: { la57 },
    cpu: { rip: CODE_VA, cr0: 0x80010011n, cr3: pt.cr3, cr4: la57 ? 0x10a0n : 0xa0n, efer: 0xd00n, regs: { rsp: 0xffffffff80001000n } },
  });
  return { hmp: new HmpMonitor(new EmuSession(m), { threadId: 77 }), m };
}

/** Tables in the shapes of the hmp.test.ts goldens, and one leaf with a reserved bit (bit 51, above MAXPHYADDR 40). */
function fourLevel(): { hmp: HmpMonitor; m: Machine } {
  return monitorFor((pt) => {
    pt.map(0n, 0x230000, 4096, { write: false });
    pt.map(0x400000n, 0x400000, 2 << 20, { user: true, pcd: true, pwt: true });
    pt.map(0x7ffff000n, 0x232000, 4096, { user: true, write: false });
    pt.map(0x800000n, 0x233000, 4096, { extra: 1n << 51n });
    pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true });
    pt.map(0xffffffff80001000n, 0x232000, 4096, { nx: true, accessed: true, dirty: true });
    pt.map(0xffffffffffe00000n, 0x600000, 2 << 20);
  });
}

describe('info tlb', () => {
  it("lists each leaf the MMU maps, XGPDACTUW from the leaf entry, in table order; the reserved-bit leaf is left out", () => {
    const { hmp } = fourLevel();
    const text = hmp.execute('info tlb');
    expect(text).toBe(
      crlf([
        '0000000000000000: 0000000000230000 ---------',
        '0000000000400000: 0000000000400000 --P--CTUW',
        '000000007ffff000: 0000000000232000 -------U-',
        'ffff800000000000: 0000000000000000 X-P-----W',
        'ffffffff80001000: 0000000000232000 X--DA---W',
        'ffffffff80100000: 0000000000100000 -G-------',
        'ffffffffffe00000: 0000000000600000 --P-----W',
      ]),
    );
    const parsed = parseInfoTlb(text);
    expect(parsed.entries.map((e) => e.va)).toEqual([0n, 0x400000n, 0x7ffff000n, 0xffff800000000000n, 0xffffffff80001000n, CODE_VA, 0xffffffffffe00000n]);
    expect(parsed.entries[1]!.flags).toEqual({ nx: false, g: false, ps: true, d: false, a: false, pcd: true, pwt: true, user: true, write: true });
  });

  it('shows the A and D bits the CPU set by running', () => {
    const { hmp, m } = fourLevel();
    m.step();
    expect(hmp.execute('info tlb')).toContain('ffffffff80100000: 0000000000100000 -G--A----\r\n');
  });

  it('walks five levels under LA57', () => {
    const { hmp } = monitorFor((pt) => pt.map(0x0001000000000000n, 0x300000, 4096, { user: true }), true);
    expect(hmp.execute('info tlb')).toBe(crlf(['0001000000000000: 0000000000300000 -------UW', 'ffffffff80100000: 0000000000100000 -G-------']));
  });

  it('says PG disabled without paging', () => {
    const { hmp, m } = fourLevel();
    m.setRegister('cr0', 0x11n);
    expect(hmp.execute('info tlb')).toBe('PG disabled\r\n');
    expect(hmp.execute('info mem')).toBe('PG disabled\r\n');
    expect(parseInfoTlb(hmp.execute('info tlb'))).toEqual({ paging: false, entries: [] });
  });
});

describe('info mem', () => {
  it('merges contiguous pages with equal effective rights; the end of the lower half prints as QEMU prints it', () => {
    const { hmp } = fourLevel();
    const text = hmp.execute('info mem');
    expect(text).toBe(
      crlf([
        '0000000000000000-0000000000001000 0000000000001000 -r-',
        '0000000000400000-0000000000600000 0000000000200000 urw',
        '000000007ffff000-0000000080000000 0000000000001000 ur-',
        'ffff800000000000-ffff800040000000 0000000040000000 -rw',
        'ffffffff80001000-ffffffff80002000 0000000000001000 -rw',
        'ffffffff80100000-ffffffff80101000 0000000000001000 -r-',
        'ffffffffffe00000-0001000000000000 0000000000200000 -rw',
      ]),
    );
    const parsed = parseInfoMem(text);
    expect(parsed.ranges.at(-1)).toMatchObject({ start: 0xffffffffffe00000n, end: 1n << 64n, size: 0x200000n, write: true, user: false });
  });

  it('merges pages that continue each other, and ANDs R/W and U/S over the levels', () => {
    const { hmp } = monitorFor((pt) => {
      pt.mapRange(0x10000000n, 0x400000, 0x3000, 4096, { user: true });
      pt.map(0x10003000n, 0x403000, 4096, { user: true, write: false });
      // A supervisor table above a user leaf: the range is supervisor.
      pt.map(0x20000000n, 0x500000, 4096, { user: true });
      const pde = pt.getEntry(0x20000000n, 'PD');
      pt.setEntry(0x20000000n, 'PD', pde & ~4n);
    });
    expect(hmp.execute('info mem')).toBe(
      crlf([
        '0000000010000000-0000000010003000 0000000000003000 urw',
        '0000000010003000-0000000010004000 0000000000001000 ur-',
        '0000000020000000-0000000020001000 0000000000001000 -rw',
        'ffffffff80100000-ffffffff80101000 0000000000001000 -r-',
      ]),
    );
  });

  it('works under LA57 (QEMU 7.2 prints nothing there)', () => {
    const { hmp } = monitorFor((pt) => pt.map(0x0001000000000000n, 0x300000, 4096, { user: true }), true);
    expect(hmp.execute('info mem')).toBe(crlf(['0001000000000000-0001000000001000 0000000000001000 urw', 'ffffffff80100000-ffffffff80101000 0000000000001000 -r-']));
  });
});

describe('xp and x', () => {
  it('dumps in QEMU\'s layout for every unit size: 16 bytes a line, 8 for bytes', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('xp /2gx 0x5000')).toBe('0000000000005000: 0x0706050403020100 0x0f0e0d0c0b0a0908\r\n');
    expect(hmp.execute('xp /5wx 0x5000')).toBe(crlf(['0000000000005000: 0x03020100 0x07060504 0x0b0a0908 0x0f0e0d0c', '0000000000005010: 0x13121110']));
    expect(hmp.execute('xp /3hx 0x5000')).toBe('0000000000005000: 0x0100 0x0302 0x0504\r\n');
    expect(hmp.execute('xp /10bx 0x5000')).toBe(crlf(['0000000000005000: 0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07', '0000000000005008: 0x08 0x09']));
    expect(Buffer.from(parseXp(hmp.execute('xp /10bx 0x5000')).bytes).toString('hex')).toBe('00010203040506070809');
  });

  it('formats decimal, unsigned, octal and characters with QEMU\'s widths', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('xp /2gd 0x5000')).toBe('0000000000005000:   506097522914230528  1084818905618843912\r\n');
    expect(hmp.execute('xp /1bd 0x5020')).toBe('0000000000005020:  -1\r\n');
    expect(hmp.execute('xp /1bu 0x5020')).toBe('0000000000005020: 255\r\n');
    expect(hmp.execute('xp /1wo 0x5004')).toBe('0000000000005004:  0701402404\r\n');
    expect(hmp.execute('xp /1ho 0x5000')).toBe('0000000000005000:   0400\r\n');
    expect(hmp.execute('xp /5bc 0x5020')).toBe("0000000000005020: '\\xff' '\\'' '\\\\' '\\n' 'A'\r\n");
  });

  it('remembers the last format and size, as QEMU\'s monitor does', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('xp 0x5000')).toBe('0000000000005000: 0x03020100\r\n');
    hmp.execute('xp /1gx 0x5000');
    expect(hmp.execute('xp 0x5008')).toBe('0000000000005008: 0x0f0e0d0c0b0a0908\r\n');
    expect(hmp.execute('xp /2x 0x5000')).toBe('0000000000005000: 0x0706050403020100 0x0f0e0d0c0b0a0908\r\n');
  });

  it('says Cannot access memory where a line cannot be read: past RAM, or a virtual page the MMU refuses', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('xp /4gx 0xfffff0')).toBe(crlf(['0000000000fffff0: 0x0000000000000000 0x0000000000000000', '0000000001000000: Cannot access memory']));
    expect(parseXp(hmp.execute('xp /4gx 0xfffff0')).unreadableAt).toBe(0x1000000n);
    expect(hmp.execute('x /1gx 0x800000')).toBe('0000000000800000: Cannot access memory\r\n');
    expect(hmp.execute('x /1gx 0xffff900000000000')).toBe('ffff900000000000: Cannot access memory\r\n');
  });

  it('x reads through the tables, with register and arithmetic expressions', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('x /1gx $rsp')).toBe('ffffffff80001000: 0x1122334455667788\r\n');
    expect(hmp.execute('x /1gx 0x7ffff000')).toBe('000000007ffff000: 0x1122334455667788\r\n');
    expect(hmp.execute('xp /1bx 0x5000 + 0x10 - 2*4')).toBe('0000000000005008: 0x08\r\n');
    expect(hmp.execute('xp /1bx (0x5000|3)')).toBe('0000000000005003: 0x03\r\n');
    expect(hmp.execute('x /1bx $pc')).toBe('ffffffff80100000: 0xf4\r\n');
  });
});

describe('gva2gpa', () => {
  it('prints the address with C\'s %#x (a zero is "gpa: 0"), or Unmapped', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('gva2gpa 0x7ffff123')).toBe('gpa: 0x232123\r\n');
    expect(hmp.execute('gva2gpa 0xffff800000001234')).toBe('gpa: 0x1234\r\n');
    expect(hmp.execute('gva2gpa 0xffff800000000000')).toBe('gpa: 0\r\n');
    expect(hmp.execute('gva2gpa 0x800000')).toBe('Unmapped\r\n');
    expect(hmp.execute('gva2gpa 0x0000800000000000')).toBe('Unmapped\r\n');
  });
});

describe('the other commands, and refusals', () => {
  it('info mtree -f shows RAM as the system view, which the live targets parse', () => {
    const { hmp } = fourLevel();
    const ranges = systemMemory(parseMtreeFlat(hmp.execute('info mtree -f')));
    expect(ranges).toEqual([{ start: 0n, end: BigInt(RAM), priority: 0, kind: 'ram', nonVolatile: false, region: 'pc.ram', offset: 0n }]);
    expect(hmp.execute('info mtree')).toContain('    0000000000000000-0000000000ffffff (prio 0, ram): pc.ram\r\n');
  });

  it('info cpus, info status, qom-get and help', () => {
    const { hmp } = fourLevel();
    expect(hmp.execute('info cpus')).toBe('* CPU #0: thread_id=77\r\n');
    expect(hmp.execute('info status')).toBe('VM status: paused (prelaunch)\r\n');
    expect(hmp.execute('qom-get /machine/unattached/device[0] phys-bits')).toBe('40\r\n');
    expect(hmp.execute('qom-get /machine/unattached/device[0] type')).toBe('"max-x86_64-cpu"\r\n');
    expect(hmp.execute('help info')).toContain('info tlb  -- show virtual to physical memory mappings\r\n');
    expect(hmp.execute('info')).toBe(hmp.execute('help info'));
    expect(hmp.execute('')).toBe('');
  });

  it('refuses bad command lines the way QEMU does, which the HMP checker turns into errors', () => {
    const { hmp } = fourLevel();
    const usage = (line: string, why: string, cmd = line.split(' ')[0]!): void => {
      const text = hmp.execute(line);
      expect(text).toBe(`${why}\r\nTry "help ${cmd}" for more information\r\n`);
      expect(() => parseXp(text)).toThrow(expect.objectContaining({ code: 'E_HMP_USAGE' }));
    };
    usage('xp', 'unexpected end of expression');
    usage('xp /2q 0', "invalid char in format: 'q'");
    usage('xp /2gx 1/0', 'division by zero');
    usage('x /1gx $nope', 'unknown register');
    usage('xp /2gx 0x1000 junk', "invalid char 'j' in expression");
    usage('gva2gpa', 'unexpected end of expression');
    usage('xp /2i 0', "format 'i' (disassembly) is not available in the pagewalk emulator's monitor");
    expect(hmp.execute('nonsense 1 2')).toBe("unknown command: 'nonsense'\r\n");
    expect(hmp.execute('info foo')).toBe("unknown command: 'info foo'\r\n");
    expect(() => parseXp(hmp.execute('info foo'))).toThrow(HmpError);
  });

  it('cont in the shutdown state answers with QEMU\'s error', () => {
    const { hmp } = fourLevel();
    const session = hmp.session;
    session.setActions({ reboot: 'shutdown', shutdown: 'pause' });
    session.cont();
    session.systemReset();
    expect(session.state).toBe('shutdown');
    expect(hmp.execute('cont')).toBe('Error: Resetting the Virtual Machine is required\r\n');
    session.quit('host-signal');
  });
});
