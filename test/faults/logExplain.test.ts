/**
 * The explainer on real logs (QEMU 7.2, captured with the test kernel: see fixtures/README.md) and on
 * logs written from the QEMU 6/8/9 sources, with golden chains; then the cases real logs rarely
 * show, built line by line: a fault repeating forever, a log starting or ending inside a chain, an
 * interrupt whose delivery fails, a #PF on the IDT during delivery, an NMI, an un-remapped PIC,
 * QEMU's interrupt count jumping, and the cap that keeps memory bounded.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explainLog, type LogExplanation } from '../../src/faults/explainLog.js';
import { QemuLogParser } from '../../src/faults/qemuLog.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

/** A fixture log, as text. */
function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'latin1');
}

function explain(text: string, options?: Parameters<typeof explainLog>[2]): LogExplanation {
  const p = new QemuLogParser();
  const events = [...p.push(text), ...p.end()];
  return explainLog(events, p.stats, options);
}

const h = (v: bigint | number | null | undefined): string | null => (v === null || v === undefined ? null : `0x${v.toString(16)}`);

/** Chains as compact rows: lines, count, end, one line; then each link's name, kind, error code, RIP, CR2, CR3, how it came, why its delivery failed. */
function chains(x: LogExplanation): unknown[] {
  return x.chains.map((c) => ({
    at: [c.firstLine, c.lastLine, c.occurrences, c.end, c.resetAfter],
    oneLine: c.oneLine,
    links: c.links.map((l) => [l.line, l.name, l.kind, h(l.errorCode), h(l.rip), h(l.cr2), h(l.cr3), h(l.raisedWhileDelivering), h(l.promotedFrom), l.deliveryFailure?.short ?? null]),
  }));
}

describe('real QEMU 7.2 logs of the test kernel', () => {
  it('a write to read-only data (e=0003): #PF, #GP on the empty IDT -> #DF, #GP again -> triple fault', () => {
    const x = explain(fixture('qemu-7.2-pf-write-triple.log'));
    expect([x.outcome, x.danger, x.cut]).toEqual(['triple-fault', true, false]);
    expect(chains(x)).toEqual([
      {
        at: [96, 140, 1, 'triple-fault', false],
        oneLine: '#PF 0x3 at 0xffffffff8010100a, CR2 0xffffffff80102018 -> #DF -> triple fault',
        links: [
          [96, '#PF', 'exception', '0x3', '0xffffffff8010100a', '0xffffffff80102018', '0x117000', null, null, 'the IDT is empty'],
          [118, '#DF', 'exception', '0x0', '0xffffffff8010100a', null, '0x117000', '0xe', '0xd', 'the IDT is empty'],
        ],
      },
    ]);
    expect(x.summary).toBe(
      'Triple fault on line 140: #PF 0x3 (a supervisor write that was refused by the page protections (read-only, NX, U/S, SMEP or SMAP)) ' +
        'at RIP 0xffffffff8010100a, CR2 0xffffffff80102018; delivering it raised #GP (the IDT is empty), which made a #DF; ' +
        'delivering the #DF raised #GP (the IDT is empty): a fault while delivering #DF is a triple fault; the CPU shut down. ' +
        'Careful: 0x3 is not "not present": P=1 means the page was mapped and the write was refused (read-only, or U/S/SMAP).',
    );
    const [pf, df] = x.chains[0]!.links;
    expect(pf!.decoded?.bits.filter((b) => b.set).map((b) => b.name)).toEqual(['P', 'W/R']);
    expect(pf!.deliveryFailure).toMatchObject({
      confidence: 'certain',
      why: 'the IDT (base 0x0, limit 0x0) ends before the 16-byte gate of vector 0xe (it needs a limit of at least 0xef): the IDT is empty, so lidt was given an empty table or never a real one; QEMU raised #GP for it (error code 0x72, IDT gate 0xe)',
      rule: '#GP while delivering #PF is a double fault (SDM Table 6-5): the CPU raises #DF instead',
    });
    expect(df!.deliveryFailure?.rule).toBe('a fault (#GP) while delivering #DF is a triple fault: the CPU shuts down');
    expect(df!.explanation).toBe(
      '#DF (double fault) at RIP 0xffffffff8010100a (64-bit, CPL 0), CR3 0x117000: a second fault while the CPU was delivering #PF. ' +
        'QEMU raised #GP during that delivery and turned it into #DF (check_exception old 0xe new 0xd); the #DF error code is always 0.',
    );
    expect(x.counts).toMatchObject({ lines: 140, recognised: 140, exceptions: 2, tripleFaults: 1, cpuResets: 2, resetsAfterTripleFault: 0, smmEntries: 1, unrecognised: 0 });
  });

  it('a fetch from an unmapped page (e=0010) is called not-present, and the NX misreading is named', () => {
    const x = explain(fixture('qemu-7.2-pf-fetch-triple.log'));
    expect(x.outcome).toBe('triple-fault');
    const pf = x.chains[0]!.links[0]!;
    expect([pf.name, h(pf.errorCode), h(pf.cr2), pf.decoded?.summary]).toEqual(['#PF', '0x10', '0xffffffff8010100a', 'supervisor instruction fetch that found no mapping (an entry with P=0)']);
    expect(pf.explanation).toContain('CR2 equals RIP: fetching the instruction itself faulted.');
    expect(x.summary).toContain('Careful: 0x10 is not an NX fault: P=0 means nothing was mapped at the fetched address; an NX fault has P=1 (0x11).');
  });

  it('a reserved bit (QEMU 7.2 reports e=0008, without P)', () => {
    const x = explain(fixture('qemu-7.2-pf-rsvd-triple.log'));
    const pf = x.chains[0]!.links[0]!;
    expect([h(pf.errorCode), pf.decoded?.reserved, pf.decoded?.present, h(pf.cr2)]).toEqual(['0x8', true, false, '0xffffffff80102018']);
    expect(pf.decoded?.pitfalls).toEqual(['QEMU 7.2 (TCG) reports reserved-bit faults without P (e.g. 0x8, 0xa, 0x18); the SDM says P=1 whenever RSVD=1']);
  });

  it('a clean run: power-on resets and SMM, no faults, exit-worthy of 0', () => {
    const x = explain(fixture('qemu-7.2-clean.log'));
    expect([x.outcome, x.danger, x.chains.length]).toEqual(['no-faults', false, 0]);
    expect(x.summary).toBe('No exceptions in 94 lines: nothing faulted. Also 1 SMM entry. 2 CPU resets (power-on or a requested reset).');
  });

  it('the default reboot action: a reset loop, each kind of cycle once with its count', () => {
    const x = explain(fixture('qemu-7.2-reset-loop.log'));
    expect([x.outcome, x.danger]).toEqual(['reset-loop', true]);
    expect(chains(x)).toEqual([
      {
        at: [96, 140, 2, 'triple-fault', true],
        oneLine: '#PF 0x10 at 0xffffffff8010100a, CR2 0xffffffff8010100a -> #DF -> triple fault',
        links: [
          [96, '#PF', 'exception', '0x10', '0xffffffff8010100a', '0xffffffff8010100a', '0x117000', null, null, 'the IDT is empty'],
          [118, '#DF', 'exception', '0x0', '0xffffffff8010100a', null, '0x117000', '0xe', '0xd', 'the IDT is empty'],
        ],
      },
      {
        // After the reset, SeaBIOS runs int3 in 32-bit mode with an empty IDT: a second kind of cycle.
        at: [175, 235, 2, 'triple-fault', true],
        oneLine: 'int3 at 0xefaad -> #GP 0x1a at 0xefaad -> #DF -> triple fault',
        links: [
          [175, 'int3', 'software-interrupt', null, '0xefaad', null, '0x0', null, null, 'the IDT is empty'],
          [195, '#GP', 'exception', '0x1a', '0xefaad', null, '0x0', '0x3', null, 'the IDT is empty'],
          [215, '#DF', 'exception', '0x0', '0xefaad', null, '0x0', '0xd', '0xd', 'the IDT is empty'],
        ],
      },
    ]);
    expect(x.chains[1]!.links[0]!.deliveryFailure?.rule).toBe('#GP while delivering #BP is not a double fault: the CPU delivers #GP on its own');
    expect(x.chains[1]!.links[1]!.selector?.summary).toBe('IDT gate 0x3 (#BP)');
    expect(x.counts).toMatchObject({ tripleFaults: 4, resetsAfterTripleFault: 4, cpuResets: 7, softwareInterrupts: 2, hardwareInterrupts: 1 });
    expect(x.notes).toEqual(['1 hardware interrupt served in real mode (Servicing hardware INT without a v= line: QEMU logs v= lines only with CR0.PE=1)']);
    expect(x.summary).toMatch(/^Reset loop: the guest triple-faulted 4 times and QEMU reset it after 4 of them \(its default action\)/);
    expect(x.summary).toContain('The cycles fail in 2 ways: 2x #PF 0x10 at 0xffffffff8010100a, CR2 0xffffffff8010100a -> #DF -> triple fault; 2x int3 at 0xefaad -> #GP 0x1a at 0xefaad -> #DF -> triple fault.');
  });

  it('stderr with the serial port on stdio: guest output and QEMU messages reported, the chain unchanged', () => {
    const x = explain(fixture('qemu-7.2-stderr-serial.log'));
    expect(x.outcome).toBe('triple-fault');
    expect(x.chains[0]!.oneLine).toBe('#PF 0x3 at 0xffffffff8010100a, CR2 0xffffffff80102018 -> #DF -> triple fault');
    expect(x.unrecognised).toEqual([
      { line: 95, text: 'pagewalk test kernel: long mode', cut: false },
      { line: 142, text: 'qemu-system-x86_64: terminating on signal 15 from pid 18531 (node)', cut: false },
    ]);
  });
});

describe('logs written from the QEMU 6.2, 8.2 and 9.1 sources', () => {
  it('QEMU 6.2 (no "Servicing hardware INT" under -d int): IRQs, a syscall and handled user faults', () => {
    const x = explain(fixture('qemu-6.2-handled.log'));
    expect([x.outcome, x.danger]).toEqual(['handled', false]);
    expect(chains(x)).toEqual([
      {
        at: [23, 43, 1, 'delivered', false],
        oneLine: '#PF 0x6 at 0x401136, CR2 0x404028',
        links: [[23, '#PF', 'exception', '0x6', '0x401136', '0x404028', '0x4c56000', null, null, null]],
      },
      { at: [66, 86, 1, 'delivered', false], oneLine: '#GP 0x0 at 0x401170', links: [[66, '#GP', 'exception', '0x0', '0x401170', null, '0x4c56000', null, null, null]] },
    ]);
    expect(x.counts).toMatchObject({ exceptions: 2, softwareInterrupts: 1, hardwareInterrupts: 2 });
    expect(x.summary).toBe('2 exceptions (1 #PF, 1 #GP), each delivered to its handler: no double or triple fault in 107 lines. Also 1 software interrupt, 2 hardware interrupts.');
  });

  it('QEMU 8.2, qemu-system-i386: IRQ0 on vector 8 is the timer, not a double fault; a #GP names its GDT selector', () => {
    const x = explain(fixture('qemu-8.2-i386-pic.log'));
    expect(x.outcome).toBe('handled');
    const gp = x.chains[0]!.links[0]!;
    expect([gp.name, h(gp.errorCode), gp.selector?.summary, gp.mode, h(gp.cr3)]).toEqual(['#GP', '0x18', 'GDT selector 0x18 (index 3)', '32-bit protected mode', '0x105000']);
    expect(x.notes).toEqual([
      'hardware interrupt on vector 0x8 (line 2, Servicing hardware INT): vectors 8-15 are CPU exceptions (#DF is 8, #GP 13): the 8259 PIC was not remapped, so IRQ0 arrives looking like #DF',
    ]);
  });

  it('QEMU 9.1: a kernel stack overflow, #PF -> #PF pushing the frame -> #DF on its IST stack', () => {
    const x = explain(fixture('qemu-9.1-stack-double-fault.log'));
    expect([x.outcome, x.danger]).toEqual(['double-fault', true]);
    expect(chains(x)).toEqual([
      {
        at: [24, 66, 1, 'delivered', false],
        oneLine: '#PF 0x2 at 0xffffffff800021a7, CR2 0xffff800000103ff8 -> #DF -> #DF handler',
        links: [
          [24, '#PF', 'exception', '0x2', '0xffffffff800021a7', '0xffff800000103ff8', '0x200000', null, null, 'the stack at 0xffff800000103ff8 is not mapped'],
          [46, '#DF', 'exception', '0x0', '0xffffffff800021a7', null, '0x200000', '0xe', '0xe', null],
        ],
      },
    ]);
    expect(x.chains[0]!.links[0]!.explanation).toContain('CR2 is just below RSP 0xffff800000104000: a push went past the bottom of the stack');
    expect(x.summary).toBe(
      'Double fault on line 46: #PF 0x2 (a supervisor write that found no mapping (an entry with P=0)) at RIP 0xffffffff800021a7, CR2 0xffff800000103ff8; ' +
        'delivering it raised #PF (the stack at 0xffff800000103ff8 is not mapped), which made a #DF; the #DF was delivered to its handler. ' +
        'A kernel cannot resume after a #DF; no triple fault in this log.',
    );
  });
});

/** Builds log lines the way QEMU prints them (64-bit form). */
const x16 = (v: bigint | number) => v.toString(16).padStart(16, '0');
const x8 = (v: bigint | number) => v.toString(16).padStart(8, '0');

function vLine(count: number, v: number, e: number, rip: bigint, rsp: bigint, o: { i?: number; cpl?: number; cr2?: bigint } = {}): string {
  const tail = v === 14 ? ` CR2=${x16(o.cr2 ?? 0n)}` : ` env->regs[R_EAX]=${x16(0)}`;
  const cs = (o.cpl ?? 0) === 3 ? 0x33 : 0x08;
  return `${String(count).padStart(6)}: v=${v.toString(16).padStart(2, '0')} e=${e.toString(16).padStart(4, '0')} i=${o.i ?? 0} cpl=${o.cpl ?? 0} IP=${cs.toString(16).padStart(4, '0')}:${x16(rip)} pc=${x16(rip)} SP=0010:${x16(rsp)}${tail}`;
}

function dump(o: { rip: bigint; rsp: bigint; cr2?: bigint; cr3?: bigint; idt?: [bigint, number]; gdt?: [bigint, number] }): string[] {
  const z = x16(0);
  const [ib, il] = o.idt ?? [0xffffffff80200000n, 0xfff];
  const [gb, gl] = o.gdt ?? [0xffffffff80201000n, 0x2f];
  const ds = `0010 ${z} ffffffff 00cf9300 DPL=0 DS   [-WA]`;
  return [
    `RAX=${z} RBX=${z} RCX=${z} RDX=${z}`,
    `RSI=${z} RDI=${z} RBP=${z} RSP=${x16(o.rsp)}`,
    `R8 =${z} R9 =${z} R10=${z} R11=${z}`,
    `R12=${z} R13=${z} R14=${z} R15=${z}`,
    `RIP=${x16(o.rip)} RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0`,
    `ES =${ds}`,
    `CS =0008 ${z} ffffffff 00af9b00 DPL=0 CS64 [-RA]`,
    `SS =${ds}`,
    `DS =${ds}`,
    `FS =${ds}`,
    `GS =${ds}`,
    `LDT=0000 ${z} 0000ffff 00008200 DPL=0 LDT`,
    `TR =0028 ffffffff80202000 00000067 00008b00 DPL=0 TSS64-busy`,
    `GDT=     ${x16(gb)} ${x8(gl)}`,
    `IDT=     ${x16(ib)} ${x8(il)}`,
    `CR0=80010011 CR2=${x16(o.cr2 ?? 0n)} CR3=${x16(o.cr3 ?? 0x1000n)} CR4=000000a0`,
    `DR0=${z} DR1=${z} DR2=${z} DR3=${z} `,
    `DR6=00000000ffff0ff0 DR7=0000000000000400`,
    `CCS=${z} CCD=${z} CCO=EFLAGS`,
    `EFER=0000000000000d00`,
  ];
}

const RIP = 0xffffffff80001000n;
const RSP = 0xffffffff80105000n;
const log = (...lines: (string | string[])[]) => `${lines.flat().join('\n')}\n`;
const pf = (count: number, cr2: bigint, e = 0x2) => [
  'check_exception old: 0xffffffff new 0xe',
  vLine(count, 14, e, RIP, RSP, { cr2 }),
  ...dump({ rip: RIP, rsp: RSP, cr2 }),
];

describe('built logs', () => {
  it('the same #PF delivered again and again at the end of the log: a fault loop', () => {
    const x = explain(log(...[0, 1, 2, 3, 4, 5].map((n) => pf(n, 0x5000n))));
    expect([x.outcome, x.danger]).toEqual(['fault-loop', true]);
    expect(x.chains.map((c) => [c.occurrences, c.oneLine])).toEqual([[6, '#PF 0x2 at 0xffffffff80001000, CR2 0x5000']]);
    expect(x.summary).toMatch(/^A fault repeats forever: #PF 0x2 at 0xffffffff80001000, CR2 0x5000 was delivered 6 times in a row at the end of the log\. /);
    // Different addresses are a working #PF handler, not a loop.
    expect(explain(log(...[0, 1, 2, 3, 4, 5].map((n) => pf(n, 0x5000n + BigInt(n) * 0x1000n)))).outcome).toBe('handled');
  });

  it('a log that starts while a #PF was being delivered', () => {
    const x = explain(log('check_exception old: 0xe new 0xd', vLine(7, 8, 0, RIP, RSP), dump({ rip: RIP, rsp: RSP, idt: [0n, 0] }), 'check_exception old: 0x8 new 0xd', 'Triple fault'));
    expect(x.outcome).toBe('triple-fault');
    expect(x.chains.map((c) => c.oneLine)).toEqual(['(delivering #PF) -> #DF at 0xffffffff80001000 -> triple fault']);
    expect(x.chains[0]!.explanation).toMatch(/^The log starts while #PF was being delivered\. /);
  });

  it('a log cut while a delivery was failing is cut short and dangerous; a cut dump alone is cut short only', () => {
    const failing = explain(log(pf(0, 0x5000n), 'check_exception old: 0xe new 0xe'));
    expect([failing.outcome, failing.danger]).toEqual(['cut-short', true]);
    expect(failing.chains[0]!.oneLine).toBe('#PF 0x2 at 0xffffffff80001000, CR2 0x5000 -> #PF raised, then the log ends');
    const text = log(pf(0, 0x5000n));
    const cut = explain(text.slice(0, text.indexOf('CR0=')));
    expect([cut.outcome, cut.danger, cut.cut]).toEqual(['cut-short', false, true]);
    expect(cut.summary).toMatch(/^The log is cut short: it ends inside the chain from line 2 \(/);
    expect(explain('check_exception old: 0xffffffff new 0xd\n').chains[0]!.explanation).toBe('QEMU raised #GP (line 1) and the log ends before it was delivered.');
  });

  it('a guest prompt without its newline at the end is not a cut record', () => {
    const x = explain(`${log(pf(0, 0x5000n))}login: `);
    expect([x.outcome, x.cut, x.unrecognised]).toEqual(['handled', false, [{ line: 23, text: 'login: ', cut: true }]]);
    expect(explain(`${log(pf(0, 0x5000n))}     1: v=0e e=00`).outcome).toBe('cut-short');
  });

  it('a hardware interrupt whose delivery fails (its gate past the IDT limit) heads the chain', () => {
    const idt: [bigint, number] = [0xffffffff80200000n, 0x9f]; // gates 0-9 only
    const x = explain(
      log(
        'Servicing hardware INT=0x20',
        vLine(0, 0x20, 0, RIP, RSP),
        dump({ rip: RIP, rsp: RSP, idt }),
        'check_exception old: 0xffffffff new 0xd',
        vLine(1, 13, 0x102, RIP, RSP),
        dump({ rip: RIP, rsp: RSP, idt }),
        'check_exception old: 0xd new 0xd',
        vLine(2, 8, 0, RIP, RSP),
        dump({ rip: RIP, rsp: RSP, idt }),
        'check_exception old: 0x8 new 0xd',
        'Triple fault',
      ),
    );
    expect(chains(x)).toEqual([
      {
        at: [2, 68, 1, 'triple-fault', false],
        oneLine: 'int 0x20 at 0xffffffff80001000 -> #GP 0x102 at 0xffffffff80001000 -> #DF -> triple fault',
        links: [
          [2, 'int 0x20', 'hardware-interrupt', null, '0xffffffff80001000', null, '0x1000', null, null, 'the IDT is too short for vector 0x20'],
          [24, '#GP', 'exception', '0x102', '0xffffffff80001000', null, '0x1000', '0x20', null, 'the IDT is too short for vector 0xd'],
          [46, '#DF', 'exception', '0x0', '0xffffffff80001000', null, '0x1000', '0xd', '0xd', 'a bad gate'],
        ],
      },
    ]);
    expect(x.chains[0]!.links[1]!.selector?.summary).toBe('IDT gate 0x20 (int 0x20)');
  });

  it('an interrupt whose handler is not mapped: the fetch #PF at the same RIP joins its chain', () => {
    const handler = 0xffffffff80400000n;
    const x = explain(log(vLine(0, 0x80, 0, RIP, RSP, { i: 1 }), dump({ rip: RIP, rsp: RSP }), pf(1, handler, 0x10)));
    expect(x.chains.map((c) => c.oneLine)).toEqual([`int 0x80 at 0xffffffff80001000 -> #PF 0x10 at 0xffffffff80001000, CR2 ${h(handler)}`]);
    expect(x.chains[0]!.links[0]!.deliveryFailure?.short).toBe(`a #PF at ${h(handler)}, likely the handler not mapped`);
    // A fetch fault at RIP itself is the instruction after the interrupt returned: a chain of its own.
    expect(explain(log(vLine(0, 0x80, 0, RIP, RSP, { i: 1 }), dump({ rip: RIP, rsp: RSP }), pf(1, RIP, 0x10))).chains.map((c) => c.links.length)).toEqual([1]);
  });

  it('a #PF while delivering, with CR2 in the IDT, the GDT, or elsewhere (the handler)', () => {
    const idt: [bigint, number] = [0xffffffff80200000n, 0xfff];
    const nested = (cr2After: bigint) =>
      explain(log(pf(0, 0x5000n), 'check_exception old: 0xe new 0xe', vLine(1, 8, 0, RIP, RSP), dump({ rip: RIP, rsp: RSP, cr2: cr2After, idt }))).chains[0]!.links[0]!.deliveryFailure;
    expect(nested(0xffffffff802000e0n)).toMatchObject({ confidence: 'likely', short: 'the IDT at 0xffffffff802000e0 is not mapped', address: 0xffffffff802000e0n });
    expect(nested(0xffffffff80201008n)?.short).toBe('the GDT at 0xffffffff80201008 is not mapped');
    expect(nested(0xffffffff80202004n)?.short).toBe('the TSS at 0xffffffff80202004 is not mapped');
    expect(nested(0xffffffff80400000n)?.why).toBe(
      "a #PF at 0xffffffff80400000 while delivering #PF: most likely fetching the handler's first instruction there (the handler is not mapped), or a stack from the TSS/IST",
    );
  });

  it('tells an NMI and an interrupt without check_exception on an exception vector from exceptions', () => {
    const x = explain(log(vLine(0, 2, 0, RIP, RSP), dump({ rip: RIP, rsp: RSP }), vLine(1, 13, 0, RIP, RSP), dump({ rip: RIP, rsp: RSP })));
    expect([x.outcome, x.counts.exceptions, x.counts.hardwareInterrupts]).toEqual(['no-faults', 0, 2]);
    expect(x.notes).toEqual([
      'hardware interrupt on vector 0xd (line 22, no check_exception before it): vectors 8-15 are CPU exceptions (#DF is 8, #GP 13): the 8259 PIC was not remapped, so IRQ5 arrives looking like #GP',
    ]);
  });

  it('notes interrupts missing from the log, lines out of order, and a second QEMU run', () => {
    const x = explain(log(pf(3, 0x1000n), pf(9, 0x2000n), pf(4, 0x3000n), pf(0, 0x4000n), pf(1, 0x5000n), pf(0, 0x6000n), pf(7, 0x7000n), pf(0, 0x8000n)));
    expect(x.notes).toEqual([
      "QEMU's interrupt count jumps from 3 to 9 on line 24 (and 1 more time): 11 logged interrupt(s) are missing from this log",
      "QEMU's interrupt count goes back from 9 to 4 on line 46: lines are out of order, or logs were joined",
      "QEMU's interrupt count starts again at 0 on line 68 (and 2 more times): the log holds more than one QEMU run",
    ]);
  });

  it('keeps at most maxChains distinct chains and counts the rest', () => {
    const x = explain(log(...Array.from({ length: 10 }, (_, n) => pf(n, BigInt(n + 1) * 0x1000n))), { maxChains: 4 });
    expect([x.chains.length, x.droppedChains, x.outcome, x.counts.exceptions]).toEqual([4, 6, 'handled', 10]);
  });
});
