/**
 * The pane renderers as text (colour off): the path of a walk at three widths, the failing level
 * marked; the fault pane's error code bit by bit and its walk; the pre-flight with its chain; the
 * watch log; the register bar dropping decodes before values; the hint line and help from the key
 * table. Tables are built with the PageTables builder; golden lines are written out.
 */
import { describe, expect, it } from 'vitest';
import { compareFault } from '../../src/faults/againstTables.js';
import { decodeErrorCode } from '../../src/faults/errorCode.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { pagingContext } from '../../src/paging/mode.js';
import type { PreflightResult } from '../../src/paging/preflight.js';
import { walk } from '../../src/paging/walk.js';
import { checkLines, faultLines, walkSummary } from '../../src/tui/faultPane.js';
import { helpLines, hintLine } from '../../src/tui/help.js';
import { KEYS, activeKeys } from '../../src/tui/keys.js';
import { ASCII_GLYPHS, paint, utf8Locale } from '../../src/tui/paint.js';
import { pathLines } from '../../src/tui/pathPane.js';
import { registerBarLines } from '../../src/tui/registerBar.js';
import { watchLines } from '../../src/tui/watchPane.js';
import { ctxOf, machine, TABLES_AT } from '../paging/coreFixtures.js';

const p = paint(false, true);

/** Kernel text (global), data (NX), and a user range; 0xffffffff80002000 is left unmapped. */
function tables() {
  const { mem, pt } = machine('4-level');
  pt.map(0xffffffff80000000n, 0x200000, 0x1000, { global: true });
  pt.map(0xffffffff80001000n, 0x201000, 0x1000, { write: true, nx: true });
  pt.map(0x400000n, 0x400000, 0x200000, { write: true, user: true });
  return { mem, ctx: ctxOf('4-level', BigInt(TABLES_AT)) };
}

describe('the path pane', () => {
  const { mem, ctx } = tables();
  const fetch = walk(mem, ctx, 0xffffffff80000010n, { kind: 'exec', user: false });

  it('puts each level on one row when the pane is wide enough', () => {
    expect(pathLines(fetch, p, 100)).toEqual([
      '0xffffffff80000010  supervisor instruction fetch, 4-level, CR3 0x10000',
      'PML4[511]  @0x10ff8  0x0000000000011007  present writable user    table 0x11000',
      'PDPT[510]  @0x11ff0  0x0000000000012007  present writable user    table 0x12000',
      'PD[0]      @0x12000  0x0000000000013007  present writable user    table 0x13000',
      'PT[0]      @0x13000  0x0000000000200103  present writable global  page 0x200000 (4K)',
      '= 0x200010  4K page, rwx supervisor global',
      '✓ a supervisor instruction fetch is allowed',
    ]);
  });

  it('shortens raw values, then takes two rows per level, on narrower panes', () => {
    const medium = pathLines(fetch, p, 76);
    expect(medium[1]).toBe('PML4[511]  @0x10ff8  0x11007   present writable user    table 0x11000');
    expect(medium[4]).toBe('PT[0]      @0x13000  0x200103  present writable global  page 0x200000 (4K)');
    const narrow = pathLines(fetch, p, 50);
    expect(narrow.slice(0, 3)).toEqual(['0xffffffff80000010  supervisor instruction fetch', 'PML4[511]  0x0000000000011007  present writable user', '    @0x10ff8  table 0x11000']);
    expect(narrow).toHaveLength(11);
  });

  it('marks the level that stops a walk, and says why with the error code', () => {
    const w = walk(mem, ctx, 0xffffffff80002008n, { kind: 'write', user: false });
    expect(pathLines(w, p, 100).slice(4)).toEqual([
      'PT[2] ✗    @0x13010  0x0000000000000000  not present',
      '✗ #PF, error code 0x2: PT[2] at 0x13010 is not present (P=0): 0xffffffff80002008 is not mapped',
    ]);
  });

  it('marks the level that removes a right, and wraps the explanation to the pane', () => {
    const w = walk(mem, ctx, 0xffffffff80001000n, { kind: 'exec', user: false });
    expect(pathLines(w, p, 100).slice(4)).toEqual([
      'PT[1] ✗    @0x13008  0x8000000000201003  present writable NX    page 0x201000 (4K)',
      '= 0x201000  4K page, rw- supervisor',
      '✗ #PF, error code 0x11: instruction fetch from a no-execute page (NX set in the PT entry; NX at any',
      '  level forbids fetches)',
    ]);
  });

  it('paints the failing level red when colour is on', () => {
    const w = walk(mem, ctx, 0xffffffff80002008n, { kind: 'write', user: false });
    const red = pathLines(w, paint(true, true), 100)[4]!;
    expect(red.startsWith('\x1b[31mPT[2] ✗')).toBe(true);
  });
});

describe('the fault pane', () => {
  const { mem, ctx } = tables();
  const w = walk(mem, ctx, 0xffffffff80002008n, { kind: 'write', user: false });

  it('decodes the error code bit by bit and holds it against the walk', () => {
    const d = decodeErrorCode(0x2);
    const lines = faultLines({ origin: 'log', cr2: 0xffffffff80002008n, decoded: d, rip: 0xffffffff80000010n, walk: w, comparison: compareFault(d, w, 0xffffffff80000010n) }, p, 60);
    expect(lines).toEqual([
      '#PF CR2 0xffffffff80002008  error code 0x2',
      '  from the exception log; raised at RIP 0xffffffff80000010',
      '  P=0     the page was not present: some level of the walk',
      '          had P=0',
      '  W/R=1   the access was a write',
      '  U/S=0   the access came from supervisor mode (CPL 0-2), or',
      '          was an implicit system access',
      '  RSVD=0  no reserved bit was involved',
      '  I/D=0   not an instruction fetch (or one on a CPU with',
      '          neither EFER.NXE nor CR4.SMEP, which never sets',
      '          I/D)',
      '  PK=0    no protection key was involved',
      '  => a supervisor write that found no mapping (an entry with',
      '     P=0)',
      '  walk: PML4[511] ok > PDPT[510] ok > PD[0] ok',
      '        PT[2] not present ✗',
      '  ✓ The tables agree: PT[2] at 0x13010 is not present (P=0):',
      '    0xffffffff80002008 is not mapped.',
    ]);
  });

  it('says when only CR2 is known, and tells the misread error codes', () => {
    const only = faultLines({ origin: 'cr2', cr2: 0xffffffff80002008n, decoded: null, rip: null, walk: w, comparison: null }, p, 100);
    expect(only[1]).toBe('  only CR2 is known: walked as a supervisor read');
    const fetch = walk(mem, ctx, 0xffffffff80002008n, { kind: 'exec', user: false });
    const d = decodeErrorCode(0x10);
    const lines = faultLines({ origin: 'command', cr2: 0xffffffff80002008n, decoded: d, rip: null, walk: fetch, comparison: compareFault(d, fetch) }, p, 200);
    expect(lines).toContain('  ⚠ 0x10 is not an NX fault: P=0 means nothing was mapped at the fetched address; an NX fault has P=1 (0x11)');
  });

  it('sums a walk up in one line', () => {
    expect(walkSummary(w, p)).toBe('PML4[511] ok > PDPT[510] ok > PD[0] ok > PT[2] not present ✗');
    expect(walkSummary(walk(mem, ctx, 0x400123n, { kind: 'read', user: true }), p)).toBe('PML4[0] ok > PDPT[0] ok > PD[2] rw user > 0x400123 ✓');
  });

  it('shows a pre-flight: verdict, summary, the chain step by step, problems and hints', () => {
    const result: PreflightResult = {
      cr3: 0x400000n,
      verdict: 'triple-fault',
      problems: [{ what: 'stack', va: 0xffff8000003ffff0n, access: 'write', fault: w.fault, walk: w, when: 'now', explanation: 'PD[1] at 0x405008 is not present (P=0): 0xffff8000003ffff0 is not mapped' }],
      chain: [
        { vector: 14, name: '#PF', errorCode: 2, cr2: 0xffff8000003ffff0n, cause: 'the push at RSP-8 faults' },
        { vector: 8, name: '#DF', errorCode: 0, cr2: null, cause: '#PF while delivering #PF' },
        { vector: -1, name: 'triple fault', errorCode: null, cr2: null, cause: '#PF while delivering #DF' },
      ],
      checked: [],
      unknown: [],
      summary: 'triple fault: the push at RSP-8 faults',
    };
    const lines = checkLines({ origin: 'watch', from: 0x310000n, rip: 0xffffffff800000d8n, result, hints: ['the stack lies in loader memory'] }, p, 80);
    expect(lines).toEqual([
      'Pre-flight of CR3 0x400000: TRIPLE FAULT',
      '  #PF → #DF → triple fault',
      '  triple fault: the push at RSP-8 faults',
      '  with 0x310000 loaded, the mov cr3 at 0xffffffff800000d8',
      '  1. #PF  error code 0x2, CR2 0xffff8000003ffff0',
      '     the push at RSP-8 faults',
      '  2. #DF  error code 0x0',
      '     #PF while delivering #PF',
      '  3. triple fault',
      '     #PF while delivering #DF',
      '  ✗ stack (now): PD[1] at 0x405008 is not present (P=0): 0xffff8000003ffff0 is',
      '    not mapped',
      '  ⚠ the stack lies in loader memory',
    ]);
    expect(checkLines({ origin: 'check', from: 0x310000n, rip: 0x1000n, result, hints: [], stale: true }, p, 80)[3]).toBe('  earlier, with 0x310000 loaded, RIP at 0x1000');
  });
});

describe('the watch pane', () => {
  it('lists each CR3 write with its verdict and problems, the one it stopped before marked', () => {
    const entries = [
      { rip: 0xffffffff800000d8n, old: 0x310000n, new: 0x310000n, verdict: 'safe' as const, problems: [], stopped: false },
      { rip: 0xffffffff800000d8n, old: 0x310000n, new: 0x400000n, verdict: 'triple-fault' as const, problems: ['stack: the push at RSP-8 faults'], stopped: true },
    ];
    expect(watchLines(entries, p, 80, 'on')).toEqual([
      '1. safe',
      '   0x310000 → 0x310000 at 0xffffffff800000d8',
      '2. TRIPLE FAULT  stopped before it',
      '   0x310000 → 0x400000 at 0xffffffff800000d8',
      '   ✗ stack: the push at RSP-8 faults',
    ]);
    expect(watchLines(entries, p, 30, 'on')[4]).toBe('   ✗ stack: the push at RSP-8…');
  });

  it('says what the watch does before any write', () => {
    expect(watchLines([], p, 80, 'on')[0]).toMatch(/^c runs the guest and stops before every mov to CR3/);
    expect(watchLines([], p, 80, 'off')[0]).toMatch(/--no-watch/);
    expect(watchLines([], p, 80, 'impossible')[0]).toMatch(/cannot be driven/);
  });
});

describe('the register bar', () => {
  const cpu: CpuState = {
    cr0: 0x80010011n,
    cr3: 0x310000n,
    cr4: 0x20n,
    efer: 0xd00n,
    cr2: 0xffff8000003ffff0n,
    rip: 0xffffffff800000d8n,
    rsp: 0xffff8000003ffff8n,
    rflags: 0x2n,
    gpr: {},
    cs: { selector: 0x8 },
    notes: [],
  };
  const ctx = pagingContext(cpu, { maxPhyAddr: 40 });

  it('decodes the paging registers and names RIP', () => {
    const sym = (va: bigint): string | undefined => (va === 0xffffffff800000d8n ? 'cr3_write' : undefined);
    expect(registerBarLines(cpu, ctx, p, 200, sym)).toEqual([
      '4-level paging  CR0 0x80010011  PE WP PG  CR3 0x310000  table 0x310000  CR4 0x20  PAE  EFER 0xd00  LME LMA NXE',
      'RIP 0xffffffff800000d8 <cr3_write>  RSP 0xffff8000003ffff8  CR2 0xffff8000003ffff0  RFLAGS 0x2  CPL 0',
    ]);
  });

  it('drops decodes before values when the terminal is narrow', () => {
    const [first, second] = registerBarLines(cpu, ctx, p, 80);
    expect(first).toBe('4-level paging  CR0 0x80010011  CR3 0x310000  CR4 0x20  EFER 0xd00  LME LMA NXE');
    expect(second).toBe('RIP 0xffffffff800000d8  RSP 0xffff8000003ffff8  CR2 0xffff8000003ffff0  CPL 0');
  });
});

describe('keys, hints and help', () => {
  it('hints at the keys that fit, and keeps the demo keys to the demo', () => {
    expect(hintLine(p, 200)).toBe('s step  c cont  Ctrl-C stop  w walk  m map  x check  : command  Tab pane  ? help  q quit');
    expect(hintLine(p, 200, true)).toContain('p scenarios');
    expect(hintLine(p, 30)).toBe('s step  c cont  Ctrl-C stop');
  });

  it('helps with every key once, from the same table', () => {
    const help = helpLines(p, true, 500).join('\n');
    for (const k of KEYS) expect(help).toContain(k.help);
    for (const line of helpLines(p, true, 40)) expect(line.length).toBeLessThanOrEqual(40);
    const keys = KEYS.flatMap((k) => k.keys);
    expect(new Set(keys).size).toBe(keys.length);
    expect(activeKeys(false).some((k) => k.action === 'pick')).toBe(false);
  });

  it('draws ASCII where the locale is not UTF-8', () => {
    expect(utf8Locale({ LANG: 'en_US.UTF-8' })).toBe(true);
    expect(utf8Locale({ LC_ALL: 'C', LANG: 'en_US.UTF-8' })).toBe(false);
    expect(utf8Locale({})).toBe(false);
    expect(paint(false, false).g).toBe(ASCII_GLYPHS);
  });
});
