/**
 * The QEMU log parser, line by line: every record QEMU 6 to 9 writes for -d int,cpu_reset (the v=
 * line in its 64-bit, qemu-system-i386 and pre-2.0 forms, check_exception, Triple fault, CPU
 * Reset, SMM, Servicing hardware INT), the register dump in both widths, and what real logs mix in:
 * guest output glued to a record, text inside a dump, a dump with no header, cut and overlong lines.
 */
import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE } from '../../src/faults/logLines.js';
import { parseDumpLine, type CpuDump } from '../../src/faults/logDump.js';
import { matchHeader } from '../../src/faults/logHeaders.js';
import { QemuLogParser, parseQemuLog, type LogEvent } from '../../src/faults/qemuLog.js';

/** A 64-bit dump as QEMU 7.2 wrote it (the #PF of test/faults/fixtures/qemu-7.2-pf-write-triple.log). */
const DUMP64 = `
RAX=0000000000117000 RBX=0000000000009500 RCX=0000000000000000 RDX=00000000000003f8
RSI=ffffffff80102040 RDI=0000000000001000 RBP=0000000000000000 RSP=ffffffff80104000
R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000
R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000
RIP=ffffffff8010100a RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
FS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
GS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT
TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy
GDT=     0000000000100078 0000001f
IDT=     0000000000000000 00000000
CR0=80010011 CR2=ffffffff80102018 CR3=0000000000117000 CR4=000000a0
DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 
DR6=00000000ffff0ff0 DR7=0000000000000400
CCS=0000000000000000 CCD=0000000000000000 CCO=DECL
EFER=0000000000000d00`.slice(1);

/** A 32-bit dump from qemu-system-i386 (8-digit DR and CCS fields; cpu-dump.c, TARGET_FMT_lx). */
const DUMP32 = `
EAX=0000002f EBX=00009500 ECX=00000000 EDX=00000000
ESI=00000000 EDI=00000000 EBP=00107ff0 ESP=00107fd8
EIP=00100a3c EFL=00000202 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
CS =0008 00000000 ffffffff 00cf9b00 DPL=0 CS32 [-RA]
SS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
DS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
FS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
GS =0010 00000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
LDT=0000 00000000 00000000 00000000
TR =0028 00104000 00000067 00008b00 DPL=0 TSS32-busy
GDT=     00103000 0000002f
IDT=     00102000 000007ff
CR0=80000011 CR2=00000000 CR3=00105000 CR4=00000010
DR0=00000000 DR1=00000000 DR2=00000000 DR3=00000000 
DR6=ffff0ff0 DR7=00000400
CCS=0000002f CCD=0000002f CCO=LOGICL
EFER=0000000000000000`.slice(1);

const PF_LINE = '     0: v=0e e=0003 i=0 cpl=0 IP=0018:ffffffff8010100a pc=ffffffff8010100a SP=0010:ffffffff80104000 CR2=ffffffff80102018';

/** bigints as hex strings, so goldens read like the log. */
function hexed(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x)));
}

function dumpOf(text: string): CpuDump {
  const [e] = parseQemuLog(`${PF_LINE}\n${text}\n`);
  if (e?.kind !== 'interrupt' || !e.dump) throw new Error('no dump');
  return e.dump;
}

describe('the v= line (do_interrupt_all)', () => {
  it('reads a 64-bit #PF line with CR2', () => {
    expect(hexed(matchHeader(PF_LINE))).toEqual({
      header: {
        kind: 'interrupt',
        count: 0,
        vector: 14,
        errorCode: 3,
        softwareInt: false,
        cpl: 0,
        cs: 24,
        ip: '0xffffffff8010100a',
        pc: '0xffffffff8010100a',
        ss: 16,
        sp: '0xffffffff80104000',
        cr2: '0xffffffff80102018',
      },
      start: 0,
      end: PF_LINE.length,
    });
  });

  it('reads the env->regs[R_EAX]= tail (QEMU 2 to 9), the EAX= tail (before QEMU 2) and 8-digit fields (qemu-system-i386)', () => {
    const cases: [string, Record<string, unknown>][] = [
      [
        '     2: v=03 e=0000 i=1 cpl=0 IP=0008:00000000000efaad pc=00000000000efaad SP=0010:0000000000000fc8 env->regs[R_EAX]=0000000000000006',
        { count: 2, vector: 3, softwareInt: true, ip: '0xefaad', sp: '0xfc8', eax: '0x6' },
      ],
      ['    12: v=0d e=001a i=0 cpl=3 IP=001b:080481a9 pc=080481a9 SP=0023:083ffecc EAX=00000004', { count: 12, vector: 13, errorCode: 26, cpl: 3, cs: 0x1b, eax: '0x4' }],
      ['     0: v=08 e=0000 i=0 cpl=0 IP=0008:00100a3c pc=00100a3c SP=0010:00107fd8 env->regs[R_EAX]=0000002f', { vector: 8, ip: '0x100a3c', eax: '0x2f' }],
      ['123456: v=ec e=0000 i=0 cpl=0 IP=0010:ffffffff81c3d6ae pc=ffffffff81c3d6ae SP=0018:ffffc90000013e30 env->regs[R_EAX]=0000000000000000', { count: 123456, vector: 0xec }],
    ];
    for (const [line, fields] of cases) expect(hexed(matchHeader(line)?.header), line).toMatchObject(fields);
  });

  it('keeps %6d padding with the count, and finds the line after guest text glued to it', () => {
    expect(matchHeader(PF_LINE)?.start).toBe(0);
    const glued = `booting...${PF_LINE.trimStart()}`;
    expect(matchHeader(glued)).toMatchObject({ start: 10, end: glued.length, header: { vector: 14 } });
  });
});

describe('the other records', () => {
  it('reads check_exception, with 0xffffffff (-1) as "nothing was being delivered"', () => {
    expect(matchHeader('check_exception old: 0xffffffff new 0xe')?.header).toEqual({ kind: 'check-exception', old: null, next: 14 });
    expect(matchHeader('check_exception old: 0xe new 0xd')?.header).toEqual({ kind: 'check-exception', old: 14, next: 13 });
    expect(matchHeader('check_exception old: 0x8 new 0xd')?.header).toEqual({ kind: 'check-exception', old: 8, next: 13 });
  });

  it('reads Triple fault, CPU Reset, SMM and Servicing (virtual) hardware INT', () => {
    expect(matchHeader('Triple fault')?.header).toEqual({ kind: 'triple-fault' });
    expect(matchHeader('CPU Reset (CPU 1)')?.header).toEqual({ kind: 'cpu-reset', cpu: 1 });
    expect(matchHeader('SMM: enter')?.header).toEqual({ kind: 'smm-enter' });
    expect(matchHeader('SMM: after RSM')?.header).toEqual({ kind: 'smm-exit' });
    expect(matchHeader('Servicing hardware INT=0x08')?.header).toEqual({ kind: 'hardware-interrupt', vector: 8, virtual: false });
    expect(matchHeader('Servicing virtual hardware INT=0x30')?.header).toEqual({ kind: 'hardware-interrupt', vector: 0x30, virtual: true });
  });

  it('on a cut line, trusts only records of fixed text (a number at the cut may itself be cut)', () => {
    expect(matchHeader('Triple fault', true)?.header).toEqual({ kind: 'triple-fault' });
    expect(matchHeader('check_exception old: 0xe new 0x1', true)).toBeNull();
    expect(matchHeader(PF_LINE.slice(0, 60), true)).toBeNull();
  });

  it('refuses lines that only look alike', () => {
    for (const line of ['v=0e e=0010', 'check_exception', 'Triple', 'CPU Reset', '     0: v=1ff e=0000 i=0 cpl=0 IP=0008:1 pc=1 SP=0010:1 EAX=0']) {
      expect(matchHeader(line), line).toBeNull();
    }
  });
});

describe('the register dump (x86_cpu_dump_state)', () => {
  it('reads the 64-bit form: registers, segments, tables, control registers, EFER', () => {
    const d = dumpOf(DUMP64);
    expect(hexed(d)).toEqual({
      width: 64,
      gpr: {
        rax: '0x117000', rbx: '0x9500', rcx: '0x0', rdx: '0x3f8', rsi: '0xffffffff80102040', rdi: '0x1000', rbp: '0x0', rsp: '0xffffffff80104000',
        r8: '0x0', r9: '0x0', r10: '0x0', r11: '0x0', r12: '0x0', r13: '0x0', r14: '0x0', r15: '0x0',
      },
      rip: '0xffffffff8010100a',
      rflags: '0x46',
      cpl: 0,
      ii: 0,
      a20: 1,
      smm: 0,
      hlt: 0,
      segments: {
        es: { selector: 16, base: '0x0', limit: 0xffffffff, flags: 0xcf9300, attributes: 'DPL=0 DS   [-WA]' },
        cs: { selector: 24, base: '0x0', limit: 0xffffffff, flags: 0xaf9b00, attributes: 'DPL=0 CS64 [-RA]' },
        ss: { selector: 16, base: '0x0', limit: 0xffffffff, flags: 0xcf9300, attributes: 'DPL=0 DS   [-WA]' },
        ds: { selector: 16, base: '0x0', limit: 0xffffffff, flags: 0xcf9300, attributes: 'DPL=0 DS   [-WA]' },
        fs: { selector: 16, base: '0x0', limit: 0xffffffff, flags: 0xcf9300, attributes: 'DPL=0 DS   [-WA]' },
        gs: { selector: 16, base: '0x0', limit: 0xffffffff, flags: 0xcf9300, attributes: 'DPL=0 DS   [-WA]' },
        ldt: { selector: 0, base: '0x0', limit: 0xffff, flags: 0x8200, attributes: 'DPL=0 LDT' },
        tr: { selector: 0, base: '0x0', limit: 0xffff, flags: 0x8b00, attributes: 'DPL=0 TSS64-busy' },
      },
      gdt: { base: '0x100078', limit: 0x1f },
      idt: { base: '0x0', limit: 0 },
      cr0: '0x80010011',
      cr2: '0xffffffff80102018',
      cr3: '0x117000',
      cr4: '0xa0',
      ccOp: 'DECL',
      efer: '0xd00',
      complete: true,
      firstLine: 2,
      lastLine: 21,
    });
  });

  it('reads the 32-bit form of qemu-system-i386', () => {
    const d = dumpOf(DUMP32);
    expect(hexed([d.width, d.gpr.eax, d.gpr.esp, d.rip, d.rflags, d.segments.cs?.attributes, d.segments.tr, d.idt, d.cr0, d.cr3, d.efer, d.complete])).toEqual([
      32,
      '0x2f',
      '0x107fd8',
      '0x100a3c',
      '0x202',
      'DPL=0 CS32 [-RA]',
      { selector: 0x28, base: '0x104000', limit: 0x67, flags: 0x8b00, attributes: 'DPL=0 TSS32-busy' },
      { base: '0x102000', limit: 0x7ff },
      '0x80000011',
      '0x105000',
      '0x0',
      true,
    ]);
  });

  it('recognises the FPU/SSE/AVX lines of a reset dump, and the APX, Opmask and Code= lines of newer QEMU', () => {
    for (const line of [
      'FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80',
      'FPR0=0000000000000000 0000 FPR1=0000000000000000 0000',
      'XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000',
      'YMM15=0000000000000000 0000000000000000 0000000000000000 0000000000000000',
      'Opmask00=0000000000000000 Opmask01=0000000000000000 Opmask02=0000000000000000 Opmask03=0000000000000000',
      'R16=0000000000000000 R17=0000000000000000 R18=0000000000000000 R19=0000000000000000',
      'Code=cc cc <0f> 22 d8 48 ff 04 25 18 20 10 80 f3 90 eb ec ?? ??',
    ]) {
      expect(parseDumpLine(line), line).not.toBeNull();
    }
    for (const line of [
      'RAX=1',
      'RAX=0000000000117000 RBX=0000000000009500',
      'CR0=80010011 CR2=ffff CR3=0000000000117000 CR4=000000a0',
      'HELLO=0000',
      'CCS=00 CCD=00',
      'ES =zz',
      'pagewalk test kernel: long mode',
      '',
    ]) {
      expect(parseDumpLine(line), line).toBeNull();
    }
  });
});

describe('QemuLogParser', () => {
  const lines = (...l: string[]) => `${l.join('\n')}\n`;

  it('attaches the dump to its record and turns each line into an event', () => {
    const events = parseQemuLog(lines('check_exception old: 0xffffffff new 0xe', PF_LINE, DUMP64, 'check_exception old: 0xe new 0xd', 'Triple fault'));
    expect(events.map((e) => [e.kind, e.line, e.endLine])).toEqual([
      ['check-exception', 1, 1],
      ['interrupt', 2, 22],
      ['check-exception', 23, 23],
      ['triple-fault', 24, 24],
    ]);
    expect(events[1]).toMatchObject({ cut: false, dump: { complete: true, cr3: 0x117000n } });
  });

  it('reports every other line as unrecognised with its number, and a record glued to guest text in two parts', () => {
    const events = parseQemuLog(lines('SeaBIOS (version 1.16.2)', `hello${'check_exception old: 0xffffffff new 0xe'}`, 'Triple fault and more', ''));
    expect(events.map((e) => (e.kind === 'unrecognised' ? ['text', e.line, e.column, e.text] : [e.kind, e.line]))).toEqual([
      ['text', 1, 0, 'SeaBIOS (version 1.16.2)'],
      ['text', 2, 0, 'hello'],
      ['check-exception', 2],
      ['triple-fault', 3],
      ['text', 3, 12, ' and more'],
      ['text', 4, 0, ''],
    ]);
  });

  it('lets a dump go on past guest output written into it (a log on stderr mixed with -serial stdio)', () => {
    const dump = DUMP64.split('\n');
    const events = parseQemuLog(lines(PF_LINE, ...dump.slice(0, 5), 'guest says hi', ...dump.slice(5)));
    expect(events.map((e) => [e.kind, e.line])).toEqual([
      ['unrecognised', 7],
      ['interrupt', 1],
    ]);
    expect(events[1]).toMatchObject({ endLine: 22, dump: { complete: true, cr3: 0x117000n } });
  });

  it('reads dump lines without a header as a dump of their own, and starts a new one when the order goes back', () => {
    const dump = DUMP64.split('\n');
    const events = parseQemuLog(lines(...dump.slice(14), ...dump));
    expect(events.map((e) => [e.kind, e.line, e.endLine, 'dump' in e ? e.dump?.complete : null])).toEqual([
      ['dump', 1, 6, true],
      ['dump', 7, 26, true],
    ]);
  });

  it('marks a record whose dump the log cut short, and a cut last line', () => {
    const dump = DUMP64.split('\n');
    const cutInDump = parseQemuLog(`${PF_LINE}\n${dump.slice(0, 15).join('\n')}\nCR0=80010011 CR2=ffff`);
    expect(cutInDump.map((e) => [e.kind, e.line, 'cut' in e ? e.cut : null])).toEqual([
      ['unrecognised', 17, true],
      ['interrupt', 1, true],
    ]);
    expect(cutInDump[1]).toMatchObject({ dump: { complete: false, idt: { base: 0n, limit: 0 } } });
    expect((cutInDump[1] as Extract<LogEvent, { kind: 'interrupt' }>).dump?.cr3).toBeUndefined();
    const cutHeader = parseQemuLog(`Triple fault\n${PF_LINE.slice(0, 50)}`);
    expect(cutHeader.map((e) => [e.kind, 'cut' in e ? e.cut : null])).toEqual([
      ['triple-fault', null],
      ['unrecognised', true],
    ]);
    expect(parseQemuLog('check_exception old: 0x8 new 0xd\nTriple fault').map((e) => e.kind)).toEqual(['check-exception', 'triple-fault']);
  });

  it('tells a record QEMU was writing when the log was cut from guest output still waiting for its newline', () => {
    const partial = (text: string) => {
      const [e] = parseQemuLog(text);
      return e?.kind === 'unrecognised' ? [e.cut, e.partialRecord] : null;
    };
    for (const text of ['     3', '     3: v=0', PF_LINE.slice(0, 70), 'check_exception old: 0xe ne', 'Triple fau', 'CPU Reset (C', 'RAX=00000000', 'CR0=8001', 'GS =0010 0000', 'EF', 'XMM07=00', 'Servicing hard', 'login: check_exception old: 0x']) {
      expect(partial(text), text).toEqual([true, true]);
    }
    for (const text of ['login: ', 'Booting from ROM...', '$ ', 'hello world', 'OK', 'PANIC=1']) expect(partial(text), text).toEqual([true, false]);
    expect(partial('login: \n')).toEqual([false, false]);
  });

  it('takes CRLF line ends and counts lines and recognised lines', () => {
    const p = new QemuLogParser();
    const events = [...p.push('check_exception old: 0xffffffff new 0x6\r\nhello\r\n'), ...p.end()];
    expect(events.map((e) => e.kind)).toEqual(['check-exception', 'unrecognised']);
    expect((events[1] as Extract<LogEvent, { kind: 'unrecognised' }>).text).toBe('hello');
    expect(p.stats).toEqual({ lines: 2, recognised: 1 });
    expect(p.end()).toEqual([]);
  });
});

describe('LineSplitter', () => {
  it('joins lines split across chunks and hands out a last line without its newline as not ended', () => {
    const s = new LineSplitter();
    expect(s.push('ab')).toEqual([]);
    expect(s.push('c\r')).toEqual([]);
    expect(s.push('\nde\nf')).toEqual([
      { number: 1, text: 'abc', ended: true, dropped: 0 },
      { number: 2, text: 'de', ended: true, dropped: 0 },
    ]);
    expect(s.end()).toEqual([{ number: 3, text: 'f', ended: false, dropped: 0 }]);
    expect(s.end()).toEqual([]);
  });

  it('keeps at most MAX_LINE characters of a line, however long (binary junk on a serial port)', () => {
    const s = new LineSplitter();
    const chunk = 'x'.repeat(100_000);
    const got = [...s.push(chunk), ...s.push(chunk), ...s.push('\nok\n')];
    expect(got.map((l) => [l.number, l.text.length, l.dropped])).toEqual([
      [1, MAX_LINE, 200_000 - MAX_LINE],
      [2, 2, 0],
    ]);
  });
});
