/**
 * The human-monitor parsers against golden text captured from QEMU 7.2 (qemu-system-x86_64, TCG,
 * `-cpu max`, through QMP human-monitor-command, so with CRLF line ends), and against garbled input.
 */
import { describe, expect, it } from 'vitest';
import { HmpError } from '../../src/qmp/errors.js';
import { parseGva2gpa, parseInfoMem, parseInfoRegisters, parseInfoTlb, parseXp } from '../../src/qmp/hmp.js';
import { checkHmpOutput } from '../../src/qmp/hmpText.js';

const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

/** `info registers` at reset: real mode, so the 32-bit layout. */
const RESET = crlf([
  '',
  'CPU#0',
  'EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1',
  'ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000',
  'EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  'ES =0000 00000000 0000ffff 00009300',
  'CS =f000 ffff0000 0000ffff 00009b00',
  'SS =0000 00000000 0000ffff 00009300',
  'DS =0000 00000000 0000ffff 00009300',
  'FS =0000 00000000 0000ffff 00009300',
  'GS =0000 00000000 0000ffff 00009300',
  'LDT=0000 00000000 0000ffff 00008200',
  'TR =0000 00000000 0000ffff 00008b00',
  'GDT=     00000000 0000ffff',
  'IDT=     00000000 0000ffff',
  'CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000000',
  'FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80',
  'FPR0=0000000000000000 0000 FPR1=0000000000000000 0000',
  'FPR2=0000000000000000 0000 FPR3=0000000000000000 0000',
  'FPR4=0000000000000000 0000 FPR5=0000000000000000 0000',
  'FPR6=0000000000000000 0000 FPR7=0000000000000000 0000',
  'XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000',
  'XMM02=0000000000000000 0000000000000000 XMM03=0000000000000000 0000000000000000',
  'XMM04=0000000000000000 0000000000000000 XMM05=0000000000000000 0000000000000000',
  'XMM06=0000000000000000 0000000000000000 XMM07=0000000000000000 0000000000000000',
]);

/** Long mode with a 64-bit CS (CR0/CR3/CR4/EFER and CS=0x08 written through the gdbstub); values edited to be distinct. */
const LONG = crlf([
  '',
  'CPU#0',
  'RAX=0000000000000001 RBX=0000000000000002 RCX=0000000000000003 RDX=0000000000060fb1',
  'RSI=0000000000000005 RDI=0000000000000006 RBP=0000000000000007 RSP=ffffffff80003ff0',
  'R8 =0000000000000008 R9 =0000000000000009 R10=000000000000000a R11=000000000000000b',
  'R12=000000000000000c R13=000000000000000d R14=000000000000000e R15=ffffffffffffffff',
  'RIP=ffffffff8010100a RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1',
  'ES =0000 0000000000000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'CS =0008 0000000000000000 ffffffff 00af9a00 DPL=0 CS64 [-R-]',
  'SS =0000 0000000000000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'DS =0000 0000000000000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'FS =0000 0000000000000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'GS =0000 ffff888000000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT',
  'TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy',
  'GDT=     ffffffff80104000 0000002f',
  'IDT=     ffffffff80105000 00000fff',
  'CR0=80010011 CR2=ffffffff8010100a CR3=0000000000118000 CR4=00000020',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000d01',
  'FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80',
  'FPR0=0000000000000000 0000 FPR1=0000000000000000 0000',
  'FPR2=0000000000000000 0000 FPR3=0000000000000000 0000',
  'FPR4=0000000000000000 0000 FPR5=0000000000000000 0000',
  'FPR6=0000000000000000 0000 FPR7=0000000000000000 0000',
  'XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000',
  'XMM02=0000000000000000 0000000000000000 XMM03=0000000000000000 0000000000000000',
  'XMM04=0000000000000000 0000000000000000 XMM05=0000000000000000 0000000000000000',
  'XMM06=0000000000000000 0000000000000000 XMM07=0000000000000000 0000000000000000',
  'XMM08=0000000000000000 0000000000000000 XMM09=0000000000000000 0000000000000000',
  'XMM10=0000000000000000 0000000000000000 XMM11=0000000000000000 0000000000000000',
  'XMM12=0000000000000000 0000000000000000 XMM13=0000000000000000 0000000000000000',
  'XMM14=0000000000000000 0000000000000000 XMM15=0000000000000000 0000000000000000',
]);

/** EFER.LMA set but CS not 64-bit (compatibility mode): EAX= layout, 8-digit segment bases, 16-digit GDT and CR3. */
const COMPAT = crlf([
  '',
  'CPU#0',
  'EAX=00000000 EBX=00000000 ECX=00000000 EDX=00060fb1',
  'ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000',
  'EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  'ES =0000 00000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'CS =0010 00000000 ffffffff 00cf9200 DPL=0 DS   [-W-]',
  'SS =0000 00000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'DS =0000 00000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'FS =0000 00000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'GS =0000 00000000 0000ffff 00009300 DPL=0 DS   [-WA]',
  'LDT=0000 00000000 0000ffff 00008200 DPL=0 LDT',
  'TR =0000 00000000 0000ffff 00008b00 DPL=0 TSS64-busy',
  'GDT=     0000000000000000 0000ffff',
  'IDT=     0000000000000000 0000ffff',
  'CR0=80010011 CR2=0000000000000000 CR3=0000000000200000 CR4=00000020',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000d01',
  'FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80',
]);

describe('parseInfoRegisters', () => {
  it('reads the reset state in the 32-bit layout', () => {
    const r = parseInfoRegisters(RESET);
    expect(r.cpu).toBe(0);
    expect(r.layout).toBe('32-bit');
    expect(r.rip).toBe(0xfff0n);
    expect(r.rsp).toBe(0n);
    expect(r.rflags).toBe(0x2n);
    expect(r.gprs).toEqual({ eax: 0n, ebx: 0n, ecx: 0n, edx: 0x60fb1n, esi: 0n, edi: 0n, ebp: 0n, esp: 0n });
    expect([r.cr0, r.cr2, r.cr3, r.cr4, r.efer]).toEqual([0x60000010n, 0n, 0n, 0n, 0n]);
    expect(r.cs).toEqual({ selector: 0xf000, base: 0xffff0000n, limit: 0xffff, flags: 0x9b00 });
    expect(r.ldt).toEqual({ selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 });
    expect(r.tr.flags).toBe(0x8b00);
    expect(r.gdt).toEqual({ base: 0n, limit: 0xffff });
    expect(r.idt).toEqual({ base: 0n, limit: 0xffff });
    expect(r.dr).toEqual({ dr0: 0n, dr1: 0n, dr2: 0n, dr3: 0n, dr6: 0xffff0ff0n, dr7: 0x400n });
    expect([r.cpl, r.halted, r.smm, r.a20]).toEqual([0, false, false, true]);
    expect(r.pkru).toBeUndefined();
  });

  it('reads the 64-bit layout: RAX..R15, 16-digit RIP, segment bases, GDT/IDT and CR2/CR3', () => {
    const r = parseInfoRegisters(LONG);
    expect(r.layout).toBe('64-bit');
    expect(Object.keys(r.gprs)).toEqual(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15']);
    expect(r.gprs.r8).toBe(8n);
    expect(r.gprs.r15).toBe(0xffffffffffffffffn);
    expect(r.rip).toBe(0xffffffff8010100an);
    expect(r.rsp).toBe(0xffffffff80003ff0n);
    expect(r.rflags).toBe(0x246n);
    expect([r.cr0, r.cr2, r.cr3, r.cr4, r.efer]).toEqual([0x80010011n, 0xffffffff8010100an, 0x118000n, 0x20n, 0xd01n]);
    expect(r.cs).toEqual({ selector: 8, base: 0n, limit: 0xffffffff, flags: 0xaf9a00 });
    expect(r.gs.base).toBe(0xffff888000000000n);
    expect(r.gdt).toEqual({ base: 0xffffffff80104000n, limit: 0x2f });
    expect(r.idt).toEqual({ base: 0xffffffff80105000n, limit: 0xfff });
    expect(r.halted).toBe(true);
  });

  it('reads the compatibility-mode mix of widths', () => {
    const r = parseInfoRegisters(COMPAT);
    expect(r.layout).toBe('32-bit');
    expect(r.cs).toEqual({ selector: 0x10, base: 0n, limit: 0xffffffff, flags: 0xcf9200 });
    expect([r.cr3, r.efer]).toEqual([0x200000n, 0xd01n]);
  });

  it('accepts LF line ends, output without the CPU# header, and a PKRU value', () => {
    const text = RESET.replace(/\r\n/g, '\n').replace('\nCPU#0\n', '\n').replace('EFER=0000000000000000', 'EFER=0000000000000000 PKRU=55555554');
    const r = parseInfoRegisters(text);
    expect(r.cpu).toBeNull();
    expect(r.pkru).toBe(0x55555554);
  });

  it('names the line it cannot read', () => {
    const garbled = RESET.replace('CR0=60000010 CR2', 'CR0=6000zz10 CR2');
    expect(() => parseInfoRegisters(garbled)).toThrow(expect.objectContaining({ code: 'E_HMP_PARSE', line: 16 }));
    expect(() => parseInfoRegisters(garbled)).toThrow(/line 16 is "CR0=6000zz10 CR2=00000000/);
    const unknownReg = RESET.replace('EFER=', 'EFOO=');
    expect(() => parseInfoRegisters(unknownReg)).toThrow(/unknown register EFOO: line 19/);
    const extra = RESET.replace('GDT=', 'something else\r\nGDT=');
    expect(() => parseInfoRegisters(extra)).toThrow(expect.objectContaining({ code: 'E_HMP_PARSE', line: 14 }));
  });

  it('refuses a second CPU, a register shown twice, mixed layouts and missing lines', () => {
    expect(() => parseInfoRegisters(RESET + RESET)).toThrow(/second CPU.*line 30 is "CPU#0"/);
    expect(() => parseInfoRegisters(RESET.replace('EFER=0000000000000000', 'EFER=0000000000000000\r\nEFER=0000000000000001'))).toThrow(
      /EFER shown twice: line 20/,
    );
    expect(() => parseInfoRegisters(LONG.replace('EAX', 'RAX').replace('RSI=', 'ESI='))).toThrow(/32-bit registers mixed with 64-bit ones: line 4/);
    expect(() => parseInfoRegisters(RESET.replace(/CR0=.*\r\n/, ''))).toThrow(/no CR0 in the output/);
    expect(() => parseInfoRegisters(RESET.replace(/IDT=.*\r\n/, ''))).toThrow(/no IDT line/);
    expect(() => parseInfoRegisters('')).toThrow(expect.objectContaining({ code: 'E_HMP_PARSE' }));
  });
});

describe('parseXp', () => {
  it('reads /gx values as little-endian bytes', () => {
    const d = parseXp(crlf(['0000000000110000: 0x0000000000111027 0x0000000000000000', '0000000000110010: 0x8000000000200063']));
    expect(d.start).toBe(0x110000n);
    expect(d.unit).toBe(8);
    expect(d.values).toEqual([0x111027n, 0n, 0x8000000000200063n]);
    expect(Buffer.from(d.bytes).toString('hex')).toBe('2710110000000000' + '0000000000000000' + '6300200000000080');
    expect(d.unreadableAt).toBeNull();
  });

  it('reads /bx, /hx and /wx', () => {
    const b = parseXp(crlf(['00000000fffffff0: 0xea 0x5b 0xe0 0x00 0xf0 0x30 0x36 0x2f', '00000000fffffff8: 0x32 0x33']));
    expect(b.unit).toBe(1);
    expect(Buffer.from(b.bytes).toString('hex')).toBe('ea5be000f030362f3233');
    expect(Buffer.from(parseXp('0000000000000000: 0x1234 0xabcd\r\n').bytes).toString('hex')).toBe('3412cdab');
    expect(Buffer.from(parseXp('0000000000000000: 0x00000001 0xdeadbeef\r\n').bytes).toString('hex')).toBe('01000000efbeadde');
  });

  it('stops at "Cannot access memory", on the first line or later', () => {
    expect(parseXp('0000000010000000: Cannot access memory\r\n')).toMatchObject({ start: 0x10000000n, values: [], unreadableAt: 0x10000000n });
    const d = parseXp(crlf(['0000000003fffff0: 0x0000000000000000 0x0000000000000001', '0000000004000000: Cannot access memory']));
    expect(d.values).toEqual([0n, 1n]);
    expect(d.unreadableAt).toBe(0x4000000n);
  });

  it('reads the empty dump of /0gx', () => {
    expect(parseXp('')).toEqual({ start: null, unit: null, values: [], bytes: new Uint8Array(0), unreadableAt: null });
  });

  it('refuses other formats, mixed sizes, gaps and text after the failure, naming the line', () => {
    expect(() => parseXp('0000000000000000: 0 0\r\n')).toThrow(/hex format.*line 1/);
    expect(() => parseXp(crlf(['0000000000000000: 0x00 0x01', '0000000000000002: 0x0002']))).toThrow(/not a 1-byte value.*line 2/);
    expect(() => parseXp(crlf(['0000000000000000: 0x00 0x01', '0000000000000004: 0x02']))).toThrow(/expected the line for 0x2: line 2/);
    expect(() => parseXp(crlf(['0000000000000000: Cannot access memory', '0000000000000010: 0x00']))).toThrow(
      expect.objectContaining({ code: 'E_HMP_PARSE', line: 2 }),
    );
    expect(() => parseXp('0000000000000000: 0x000\r\n')).toThrow(/0x000 is not a 1-, 2-, 4- or 8-byte value/);
  });

  it("turns the monitor's refusals into errors of their own", () => {
    expect(() => parseXp('unexpected end of expression\r\nTry "help xp" for more information\r\n')).toThrow(
      expect.objectContaining({ code: 'E_HMP_USAGE', message: expect.stringMatching(/unexpected end of expression/) }),
    );
    expect(() => parseXp("unknown command: 'xq'\r\n")).toThrow(expect.objectContaining({ code: 'E_HMP_UNKNOWN_COMMAND' }));
  });
});

describe('parseGva2gpa', () => {
  it('reads a translation and "Unmapped"', () => {
    expect(parseGva2gpa('gpa: 0x231005\r\n')).toEqual({ mapped: true, gpa: 0x231005n });
    expect(parseGva2gpa('Unmapped\r\n')).toEqual({ mapped: false });
    // %#llx writes zero without its 0x.
    expect(parseGva2gpa('gpa: 0\r\n')).toEqual({ mapped: true, gpa: 0n });
  });

  it('refuses anything else', () => {
    expect(() => parseGva2gpa('')).toThrow(expect.objectContaining({ code: 'E_HMP_PARSE', line: 1 }));
    expect(() => parseGva2gpa('gpa: 231005\r\n')).toThrow(/line 1 is "gpa: 231005"/);
    expect(() => parseGva2gpa('gpa: 0x1\r\ngpa: 0x2\r\n')).toThrow(expect.objectContaining({ line: 2 }));
    expect(() => parseGva2gpa('unexpected end of expression\r\nTry "help gva2gpa" for more information\r\n')).toThrow(
      expect.objectContaining({ code: 'E_HMP_USAGE' }),
    );
  });
});

/** `info tlb` of 4-level tables built with PageTables (4 KiB, 2 MiB and 1 GiB pages, the top page). */
const TLB_4LEVEL = crlf([
  '0000000000000000: 0000000000230000 ---------',
  '0000000000400000: 0000000000400000 --P--CTUW',
  '000000007ffff000: 0000000000232000 -------U-',
  'ffff800000000000: 0000000000000000 X-P-----W',
  'ffffffff80000000: 0000000000231000 -G-------',
  'ffffffff80001000: 0000000000232000 X--DA---W',
  'ffffffffffc00000: 0000000000600000 --P-----W',
  'fffffffffffff000: 0000000000231000 --------W',
]);

const NONE = { nx: false, g: false, ps: false, d: false, a: false, pcd: false, pwt: false, user: false, write: false };

describe('parseInfoTlb', () => {
  it('reads each flag character X G P D A C T U W', () => {
    const t = parseInfoTlb(TLB_4LEVEL);
    expect(t.paging).toBe(true);
    expect(t.entries.map((e) => [e.va, e.pa])).toEqual([
      [0n, 0x230000n],
      [0x400000n, 0x400000n],
      [0x7ffff000n, 0x232000n],
      [0xffff800000000000n, 0n],
      [0xffffffff80000000n, 0x231000n],
      [0xffffffff80001000n, 0x232000n],
      [0xffffffffffc00000n, 0x600000n],
      [0xfffffffffffff000n, 0x231000n],
    ]);
    expect(t.entries[0]!.flags).toEqual(NONE);
    expect(t.entries[1]!.flags).toEqual({ ...NONE, ps: true, pcd: true, pwt: true, user: true, write: true });
    expect(t.entries[2]!.flags).toEqual({ ...NONE, user: true });
    expect(t.entries[3]!.flags).toEqual({ ...NONE, nx: true, ps: true, write: true });
    expect(t.entries[4]!.flags).toEqual({ ...NONE, g: true });
    expect(t.entries[5]!.flags).toEqual({ ...NONE, nx: true, d: true, a: true, write: true });
  });

  it('reads 32-bit paging (4 MiB page) and clears the NX bit QEMU leaks into a PAE large page address', () => {
    const t32 = parseInfoTlb(crlf(['0000000000000000: 0000000000230000 ---------', '00000000c0000000: 0000000000400000 -GP-----W', '00000000fffff000: 0000000000231000 -------UW']));
    expect(t32.entries[1]).toEqual({ va: 0xc0000000n, pa: 0x400000n, flags: { ...NONE, g: true, ps: true, write: true } });
    const pae = parseInfoTlb(crlf(['0000000000000000: 0000000000230000 ---------', '00000000c0000000: 8000000000400000 X-P-----W']));
    expect(pae.entries[1]).toEqual({ va: 0xc0000000n, pa: 0x400000n, flags: { ...NONE, nx: true, ps: true, write: true } });
  });

  it('reads "PG disabled" and empty output', () => {
    expect(parseInfoTlb('PG disabled\r\n')).toEqual({ paging: false, entries: [] });
    expect(parseInfoTlb('')).toEqual({ paging: true, entries: [] });
  });

  it('names a garbled line', () => {
    expect(() => parseInfoTlb(TLB_4LEVEL.replace('X--DA---W', 'X--DA--W'))).toThrow(expect.objectContaining({ code: 'E_HMP_PARSE', line: 6 }));
    expect(() => parseInfoTlb(TLB_4LEVEL.replace('-G-------', 'G--------'))).toThrow(/line 5 is "ffffffff80000000: 0000000000231000 G--------"/);
    expect(() => parseInfoTlb(`${TLB_4LEVEL}PG disabled\r\n`)).toThrow(expect.objectContaining({ line: 9 }));
    expect(() => parseInfoTlb("unknown command: 'tlb'\r\n")).toThrow(expect.objectContaining({ code: 'E_HMP_UNKNOWN_COMMAND' }));
  });
});

/** `info mem` of the same 4-level tables: merged ranges, the last one ending at 2^64 (printed as 2^48). */
const MEM_4LEVEL = crlf([
  '0000000000000000-0000000000001000 0000000000001000 -r-',
  '0000000000400000-0000000000600000 0000000000200000 urw',
  '000000007ffff000-0000000080000000 0000000000001000 ur-',
  'ffff800000000000-ffff800040000000 0000000040000000 -rw',
  'ffffffff80000000-ffffffff80001000 0000000000001000 -r-',
  'ffffffff80001000-ffffffff80002000 0000000000001000 -rw',
  'ffffffffffc00000-ffffffffffe00000 0000000000200000 -rw',
  'fffffffffffff000-0001000000000000 0000000000001000 -rw',
]);

describe('parseInfoMem', () => {
  it('reads ranges with user/read/write, ending at 2^64 at the top', () => {
    const m = parseInfoMem(MEM_4LEVEL);
    expect(m.paging).toBe(true);
    expect(m.ranges[1]).toEqual({ start: 0x400000n, end: 0x600000n, size: 0x200000n, user: true, read: true, write: true });
    expect(m.ranges[2]).toEqual({ start: 0x7ffff000n, end: 0x80000000n, size: 0x1000n, user: true, read: true, write: false });
    expect(m.ranges[3]).toEqual({ start: 0xffff800000000000n, end: 0xffff800040000000n, size: 0x40000000n, user: false, read: true, write: true });
    expect(m.ranges[7]).toEqual({ start: 0xfffffffffffff000n, end: 1n << 64n, size: 0x1000n, user: false, read: true, write: true });
  });

  it('reads the 32-bit top of memory, "PG disabled", and the empty output of LA57', () => {
    const m32 = parseInfoMem('00000000fffff000-0000000100000000 0000000000001000 urw\r\n');
    expect(m32.ranges).toEqual([{ start: 0xfffff000n, end: 0x100000000n, size: 0x1000n, user: true, read: true, write: true }]);
    expect(parseInfoMem('PG disabled\r\n')).toEqual({ paging: false, ranges: [] });
    expect(parseInfoMem('')).toEqual({ paging: true, ranges: [] });
  });

  it('reads a range ending at the top of the lower half, whose end QEMU prints sign-extended', () => {
    const m = parseInfoMem('00007ffffffff000-ffff800000000000 0000000000001000 urw\r\n');
    expect(m.ranges).toEqual([{ start: 0x7ffffffff000n, end: 1n << 47n, size: 0x1000n, user: true, read: true, write: true }]);
  });

  it('refuses a size that does not match the bounds, and garbled lines', () => {
    expect(() => parseInfoMem(MEM_4LEVEL.replace('0000000000400000-0000000000600000 0000000000200000', '0000000000400000-0000000000600000 0000000000100000'))).toThrow(
      /does not span 0x0000000000100000 bytes: line 2/,
    );
    expect(() => parseInfoMem(MEM_4LEVEL.replace('-r-\r\n0000000000400000', '-x-\r\n0000000000400000'))).toThrow(expect.objectContaining({ line: 1 }));
    expect(() => parseInfoMem('0000000000000000-0000000000001000 0000000000001000 -r- extra\r\n')).toThrow(/line 1/);
  });
});

describe('checkHmpOutput', () => {
  it('passes ordinary output and flags refusals', () => {
    expect(() => checkHmpOutput('gpa: 0x1\r\n')).not.toThrow();
    expect(() => checkHmpOutput("unknown command: 'nonsense'\r\n", 'nonsense')).toThrow(
      new HmpError('E_HMP_UNKNOWN_COMMAND', 'the QEMU monitor has no command "nonsense" (in "nonsense")'),
    );
    expect(() => checkHmpOutput('invalid char \'z\' in expression\r\nTry "help xp" for more information\r\n', 'xp /2gx zz')).toThrow(
      'the QEMU monitor rejected "xp /2gx zz": invalid char \'z\' in expression',
    );
    expect(() => checkHmpOutput('gva2gpa: extraneous characters at the end of line\r\nTry "help gva2gpa" for more information\r\n')).toThrow(
      new HmpError('E_HMP_USAGE', 'the QEMU monitor rejected its "gva2gpa" command: gva2gpa: extraneous characters at the end of line'),
    );
    expect(() => checkHmpOutput("unknown command: 'info nonsense'\r\n")).toThrow('the QEMU monitor has no command "info nonsense"');
  });
});
