/**
 * `pagewalk explain-log` in process: the text (golden), the JSON shape of DESIGN.md, the exit
 * statuses (1 for a triple or double fault, 0 for a handled or clean log, 2 for input that is not a
 * QEMU log or cannot be read), standard input, and with a target: each #PF walked in the log's CR3
 * in a raw image of the very test kernel QEMU ran, built again with the PageTables builder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { TEST_KERNEL, buildTestKernel, mapTestKernel } from '../../src/image/testKernel.js';
import type { PageTables } from '../../src/image/pageTables.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { cli } from '../helpers/cli.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const fx = (name: string) => join(FIXTURES, name);

const GOLDEN_DOUBLE_FAULT = `
QEMU log qemu-9.1-stack-double-fault.log: 66 lines, 2 exceptions, 1 hardware interrupt

Chain 1, lines 24-66: #PF 0x2 at 0xffffffff800021a7, CR2 0xffff800000103ff8 -> #DF -> #DF handler
  1. #PF page fault, line 24
     RIP 0xffffffff800021a7   CPL 0, 64-bit   CR2 0xffff800000103ff8   CR3 0x200000
     error code 0x2
       P=0     the page was not present: some level of the walk had P=0
       W/R=1   the access was a write
       U/S=0   the access came from supervisor mode (CPL 0-2), or was an implicit system access
       RSVD=0  no reserved bit was involved
       I/D=0   not an instruction fetch (or one on a CPU with neither EFER.NXE nor CR4.SMEP, which never sets I/D)
       PK=0    no protection key was involved
       => a supervisor write that found no mapping (an entry with P=0)
     CR2 is just below RSP 0xffff800000104000: a push went past the bottom of the stack (a stack overflow into an unmapped guard page, or a stack that was never mapped).
     delivery failed: pushing the exception frame at 0xffff800000103ff8, just below RSP 0xffff800000104000, faulted: the stack is not mapped (or not writable)
       #PF while delivering #PF is a double fault (SDM Table 6-5): the CPU raises #DF instead
  2. #DF double fault, line 46
     RIP 0xffffffff800021a7   CPL 0, 64-bit   CR3 0x200000
     a second fault while the CPU was delivering #PF. QEMU raised #PF during that delivery and turned it into #DF (check_exception old 0xe new 0xe); the #DF error code is always 0.

Outcome: DOUBLE FAULT
  Double fault on line 46: #PF 0x2 (a supervisor write that found no mapping (an entry with P=0)) at RIP 0xffffffff800021a7, CR2 0xffff800000103ff8; delivering it raised #PF (the stack at 0xffff800000103ff8 is not mapped), which made a #DF; the #DF was delivered to its handler. A kernel cannot resume after a #DF; no triple fault in this log.
`.slice(1);

describe('explain-log, text', () => {
  it('prints each chain, each exception with its error code bit by bit, and the outcome (golden)', async () => {
    const r = await cli(['explain-log', fx('qemu-9.1-stack-double-fault.log')]);
    expect(r.stdout).toBe(GOLDEN_DOUBLE_FAULT);
    expect([r.status, r.stderr]).toEqual([1, '']);
  });

  it('names the triple fault, the misreading, and the lines that are not QEMU\'s', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-stderr-serial.log')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('       ! 0x3 is not "not present": P=1 means the page was mapped and the write was refused (read-only, or U/S/SMAP)\n');
    expect(r.stdout).toContain('  => triple fault (line 141): the CPU shut down; QEMU paused or exited\n');
    expect(r.stdout).toContain('\nOutcome: TRIPLE FAULT\n');
    expect(r.stdout).toContain(
      "\nOther lines: 2 (guest output, QEMU messages, or lines cut short), not from QEMU's -d logging\n" +
        '  line 95: "pagewalk test kernel: long mode"\n' +
        '  line 142: "qemu-system-x86_64: terminating on signal 15 from pid 18531 (node)"\n',
    );
  });

  it('summarises a reset loop once per kind of cycle', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-reset-loop.log')]);
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Chain '))).toEqual([
      'Chain 1, lines 96-140, seen 2 times (the last from line 332): #PF 0x10 at 0xffffffff8010100a, CR2 0xffffffff8010100a -> #DF -> triple fault',
      'Chain 2, lines 175-235, seen 2 times (the last from line 411): int3 at 0xefaad -> #GP 0x1a at 0xefaad -> #DF -> triple fault',
    ]);
    expect(r.stdout).toContain('\nOutcome: RESET LOOP\n');
  });
});

describe('explain-log, exit status', () => {
  it('is 1 for a triple or double fault or a reset loop, 0 for a handled or clean log', async () => {
    const status = async (name: string) => (await cli(['explain-log', fx(name)])).status;
    expect(await status('qemu-7.2-pf-write-triple.log')).toBe(1);
    expect(await status('qemu-7.2-reset-loop.log')).toBe(1);
    expect(await status('qemu-9.1-stack-double-fault.log')).toBe(1);
    expect(await status('qemu-6.2-handled.log')).toBe(0);
    expect(await status('qemu-8.2-i386-pic.log')).toBe(0);
    expect(await status('qemu-7.2-clean.log')).toBe(0);
  });

  describe('with files that are not logs', () => {
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'pagewalk-log-'));
      writeFileSync(join(dir, 'notes.txt'), 'my kernel notes\nRAX is a register\n');
      writeFileSync(join(dir, 'empty.log'), '');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('is 2, with one line saying what was expected', async () => {
      const notLog = await cli(['explain-log', join(dir, 'notes.txt')]);
      expect([notLog.status, notLog.stdout]).toEqual([2, '']);
      expect(notLog.stderr).toBe(
        `pagewalk: ${join(dir, 'notes.txt')} is not a QEMU -d int log: none of its 2 lines is one QEMU writes (v=.., check_exception, Triple fault, CPU Reset, a register dump); run QEMU with -d int,cpu_reset -D FILE\n`,
      );
      const empty = await cli(['explain-log', join(dir, 'empty.log')]);
      expect([empty.status, empty.stderr]).toEqual([2, `pagewalk: ${join(dir, 'empty.log')} is empty: expected a QEMU log (qemu-system-x86_64 -d int,cpu_reset -D FILE)\n`]);
      const missing = await cli(['explain-log', join(dir, 'nope.log')]);
      expect([missing.status, missing.stderr]).toEqual([2, `pagewalk: cannot read ${join(dir, 'nope.log')}: no such file\n`]);
      const directory = await cli(['explain-log', dir]);
      expect([directory.status, directory.stderr]).toEqual([2, `pagewalk: cannot read ${dir}: it is a directory\n`]);
    });
  });
});

describe('explain-log --json', () => {
  it('has the shape of DESIGN.md: events with vector, name, errorCode, decoded, rip, cr2, cr3, explanation; outcome; summary', async () => {
    const r = await cli(['explain-log', '--json', fx('qemu-7.2-pf-fetch-triple.log')]);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.events).toHaveLength(2);
    expect(j.events[0]).toMatchObject({
      chain: 0,
      line: 96,
      endLine: 116,
      count: 0,
      vector: 14,
      name: '#PF',
      kind: 'exception',
      i: 0,
      cpl: 0,
      errorCode: '0x10',
      decoded: { code: '0x10', present: false, fetch: true, access: 'exec', summary: 'supervisor instruction fetch that found no mapping (an entry with P=0)' },
      selector: null,
      rip: '0xffffffff8010100a',
      rsp: '0xffffffff80104000',
      cr2: '0xffffffff8010100a',
      cr3: '0x117000',
      mode: '64-bit',
      raisedWhileDelivering: null,
      deliveryFailure: { raised: '0xd', confidence: 'certain', address: null },
      hints: ['CR2 equals RIP: fetching the instruction itself faulted.'],
      tables: null,
    });
    expect(j.events[0].explanation).toMatch(/^#PF \(page fault\) at RIP 0xffffffff8010100a \(64-bit, CPL 0\), CR3 0x117000: a supervisor instruction fetch/);
    expect(j.events[1]).toMatchObject({ vector: 8, name: '#DF', errorCode: '0x0', raisedWhileDelivering: '0xe', promotedFrom: '0xd', cr2: null });
    expect(j.chains).toEqual([
      expect.objectContaining({ events: [0, 1], end: 'triple-fault', firstLine: 96, lastLine: 140, occurrences: 1, tripleFaultLine: 140, tripleFaultCause: '0xd', resetAfter: false }),
    ]);
    expect([j.outcome, j.danger, j.cut, j.droppedChains]).toEqual(['triple-fault', true, false, 0]);
    expect(j.summary).toMatch(/^Triple fault on line 140: #PF 0x10 /);
    expect(j.counts).toMatchObject({ lines: 140, exceptions: 2, tripleFaults: 1, byName: { '#PF': 1, '#DF': 1 } });
  });
});

/** A minimal ELF64 with a symbol table (null, .symtab, .strtab sections), as a kernel's ELF carries one. */
function elfWithSymbols(symbols: { name: string; value: bigint; size: number; type: number }[]): Uint8Array {
  const names = symbols.map((sym) => sym.name);
  const strtab = Buffer.from(`\0${names.join('\0')}\0`, 'latin1');
  const symtabOff = 64;
  const symtabSize = (symbols.length + 1) * 24;
  const strtabOff = symtabOff + symtabSize;
  const shoff = (strtabOff + strtab.length + 7) & ~7;
  const buf = new Uint8Array(shoff + 3 * 64);
  const dv = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 0x3e, true); // x86-64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(0x28, BigInt(shoff), true);
  dv.setUint16(0x34, 64, true);
  dv.setUint16(0x3a, 64, true);
  dv.setUint16(0x3c, 3, true);
  let name = 1;
  symbols.forEach((sym, i) => {
    const at = symtabOff + (i + 1) * 24;
    dv.setUint32(at, name, true);
    buf[at + 4] = 0x10 | sym.type; // STB_GLOBAL
    dv.setUint16(at + 6, 1, true);
    dv.setBigUint64(at + 8, sym.value, true);
    dv.setBigUint64(at + 16, BigInt(sym.size), true);
    name += sym.name.length + 1;
  });
  buf.set(strtab, strtabOff);
  const section = (i: number, type: number, offset: number, size: number, link: number, entsize: number) => {
    const at = shoff + i * 64;
    dv.setUint32(at + 4, type, true);
    dv.setBigUint64(at + 0x18, BigInt(offset), true);
    dv.setBigUint64(at + 0x20, BigInt(size), true);
    dv.setUint32(at + 0x28, link, true);
    dv.setBigUint64(at + 0x38, BigInt(entsize), true);
  };
  section(1, 2, symtabOff, symtabSize, 2, 24); // SHT_SYMTAB, strings in section 2
  section(2, 3, strtabOff, strtab.length, 0, 0); // SHT_STRTAB
  return buf;
}

describe('explain-log --elf, and options that do not apply', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pagewalk-log-'));
    writeFileSync(
      join(dir, 'kernel.elf'),
      elfWithSymbols([
        { name: 'cr3_loop', value: 0xffffffff80101000n, size: 0x15, type: 2 },
        { name: 'loop_count', value: 0xffffffff80102018n, size: 8, type: 1 },
      ]),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names RIP and CR2 with the kernel symbols', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log'), '--elf', join(dir, 'kernel.elf')]);
    expect(r.stdout).toContain('     RIP 0xffffffff8010100a <cr3_loop+0xa>   CPL 0, 64-bit   CR2 0xffffffff80102018 <loop_count>   CR3 0x117000\n');
    const j = JSON.parse((await cli(['explain-log', '--json', fx('qemu-7.2-pf-write-triple.log'), '--elf', join(dir, 'kernel.elf')])).stdout);
    expect(j.events.map((e: { ripSymbol: string | null; cr2Symbol: string | null }) => [e.ripSymbol, e.cr2Symbol])).toEqual([
      ['cr3_loop+0xa', 'loop_count'],
      ['cr3_loop+0xa', null],
    ]);
  });

  it('refuses --mode and --pkru (the registers come from the log), and walk options without a target', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log'), '--mode', '5-level']);
    expect([r.status, r.stderr]).toEqual([2, 'pagewalk: explain-log takes the registers from the log: --mode does not apply (override one with --cr0, --cr3, --cr4 or --efer)\n']);
    const noTarget = await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log'), '--cr3', '0x1000']);
    expect([noTarget.status, noTarget.stderr]).toEqual([
      2,
      'pagewalk: --cr3 is for walking each #PF in the tables of a target: pass --dump FILE, --example, --gdb HOST:PORT or --qmp PATH with it\n',
    ]);
  });
});

describe('explain-log -', () => {
  it('reads standard input, in chunks', async () => {
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(fx('qemu-7.2-pf-write-triple.log'), 'latin1');
    let stdout = '';
    const status = await run(['explain-log', '-'], {
      stdout: { write: (s: string) => (stdout += s), isTTY: false },
      stderr: { write: () => true, isTTY: false },
      env: {},
      stdin: Readable.from([text.slice(0, 1000), text.slice(1000, 5000), text.slice(5000)].map((s) => Buffer.from(s, 'latin1'))),
    } as Parameters<typeof run>[1]);
    expect(status).toBe(1);
    expect(stdout).toBe((await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log')])).stdout.replace('qemu-7.2-pf-write-triple.log', 'standard input'));
  });
});

describe('explain-log with a target: the page faults against the tables', () => {
  const HH = (pa: number) => TEST_KERNEL.higherHalf + BigInt(pa);
  /** The space the write and reserved-bit logs ran on: the kernel's pages, data read-only or with bit 45 set. */
  const space = (data: { write?: boolean; extra?: bigint }) => (pt: PageTables) => {
    mapTestKernel(pt, { higherHalf: 'none' });
    pt.map(HH(TEST_KERNEL.codePa), TEST_KERNEL.codePa, 0x1000, { write: false, global: true });
    pt.map(HH(TEST_KERNEL.dataPa), TEST_KERNEL.dataPa, 0x1000, { nx: true, global: true, ...data });
    pt.map(HH(TEST_KERNEL.stackPa), TEST_KERNEL.stackPa, 0x1000, { nx: true, global: true });
  };
  let dir = '';
  const image = (name: string) => join(dir, `${name}.img`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pagewalk-log-'));
    const kernels = {
      write: buildTestKernel({ spaces: { s: space({ write: false }) }, slot: 's' }),
      rsvd: buildTestKernel({ spaces: { s: space({ extra: 1n << 45n }) }, slot: 's' }),
      fetch: buildTestKernel({ spaces: { s: (pt) => mapTestKernel(pt, { higherHalf: 'none' }) }, slot: 's' }),
    };
    for (const [name, k] of Object.entries(kernels)) {
      expect(k.manifest.slotCr3).toBe(0x117000n); // the CR3 the logs show
      await writeRawImage(k.mem, image(name));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('walks CR2 in the CR3 of the log with the access of the error code, and the tables agree', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log'), '--dump', image('write'), '--maxphyaddr', '40']);
    expect([r.status, r.stderr]).toEqual([1, '']);
    expect(r.stdout).toContain('     The tables now:\n       0xffffffff80102018  4-level, CR3 0x117000, supervisor write\n');
    expect(r.stdout).toContain('     ✓ The tables agree: ');
    const fetch = await cli(['explain-log', '--json', fx('qemu-7.2-pf-fetch-triple.log'), '--dump', image('fetch'), '--maxphyaddr', '40']);
    const j = JSON.parse(fetch.stdout);
    expect(j.events[0].tables).toMatchObject({ agrees: true, walk: { va: '0xffffffff8010100a', cr3: '0x117000', mapped: false, access: { kind: 'exec', faults: true, errorCode: '0x10' } } });
    expect(j.events[1].tables).toBeNull(); // only #PF is walked
  });

  it('needs the right MAXPHYADDR to see a reserved bit, and says what it assumed', async () => {
    const right = await cli(['explain-log', '--json', fx('qemu-7.2-pf-rsvd-triple.log'), '--dump', image('rsvd'), '--maxphyaddr', '40']);
    expect(JSON.parse(right.stdout).events[0].tables).toMatchObject({ agrees: true, walk: { fault: { level: 'PT', reason: 'reserved-bit' } } });
    const assumed = await cli(['explain-log', fx('qemu-7.2-pf-rsvd-triple.log'), '--dump', image('rsvd')]);
    expect(assumed.stderr).toBe("note: MAXPHYADDR is unknown: assuming 52 (pass --maxphyaddr N, e.g. 40 for QEMU's default CPU)\n");
    expect(assumed.stdout).toContain('     ? The tables now allow this supervisor read at 0xffffffff80102018');
  });

  it('walks other tables with --cr3, and says so', async () => {
    const r = await cli(['explain-log', fx('qemu-7.2-pf-write-triple.log'), '--dump', image('write'), '--maxphyaddr', '40', '--cr3', '0x110000']);
    expect(r.stderr).toBe('note: walking with --cr3 0x110000 instead of the CR3 the log shows\n');
    expect(r.stdout).toContain('     ? The tables now allow this supervisor write at 0xffffffff80102018 (it maps to 0x102018)');
  });
});
