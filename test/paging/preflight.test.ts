import { describe, expect, it } from 'vitest';
import { gate32, gate64 } from '../../src/image/descriptors.js';
import type { PageTables } from '../../src/image/pageTables.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { asyncMemory, type PhysMemory } from '../../src/paging/memory.js';
import {
  TRIPLE_FAULT,
  exceptionClass,
  faultDuringDelivery,
  preflight,
  preflightAsync,
  pushesErrorCode,
  vectorName,
  type PreflightResult,
} from '../../src/paging/preflight.js';
import { CR4 } from '../../src/paging/registers.js';
import { LEGACY, LONG, legacyWorld, longWorld, type Region, type World } from './fixtures/machine.js';

const ALL: Region[] = ['code', 'handlers', 'df', 'timer', 'data', 'idt', 'stack', 'ist'];
const but = (...left: Region[]): Region[] => ALL.filter((r) => !left.includes(r));

function run(w: World, t: PageTables | bigint, patch: Partial<CpuState> = {}): PreflightResult {
  const cpu = { ...w.cpu, ...patch };
  return preflight(w.mem, { ctx: w.ctx(t, cpu), cpu });
}
const vectors = (r: PreflightResult): number[] => r.chain.map((l) => l.vector);
const whats = (r: PreflightResult): string[] => r.problems.map((p) => p.what);
const problem = (r: PreflightResult, what: string) => {
  const p = r.problems.find((x) => x.what === what);
  if (!p) throw new Error(`no problem '${what}' in ${JSON.stringify(whats(r))}`);
  return p;
};

describe('exception classes and the double-fault rules (SDM Tables 6-4, 6-5)', () => {
  it('names vectors', () => {
    expect([14, 13, 8, 2, 18, 11, 0x20, 0xff, TRIPLE_FAULT].map(vectorName)).toEqual(['#PF', '#GP', '#DF', '#NMI', '#MC', '#NP', 'int 0x20', 'int 0xff', 'triple fault']);
  });
  it('classifies and combines', () => {
    expect([0, 10, 11, 12, 13, 14, 20, 8, 2, 18, 0x20].map(exceptionClass)).toEqual([
      'contributory', 'contributory', 'contributory', 'contributory', 'contributory', 'page-fault', 'page-fault', 'double-fault', 'benign', 'benign', 'benign',
    ]);
    expect(faultDuringDelivery(14, 14)).toBe('double-fault');
    expect(faultDuringDelivery(14, 13)).toBe('double-fault');
    expect(faultDuringDelivery(13, 11)).toBe('double-fault');
    expect(faultDuringDelivery(13, 14)).toBe('serial');
    expect(faultDuringDelivery(2, 14)).toBe('serial');
    expect(faultDuringDelivery(8, 14)).toBe('triple-fault');
    expect(faultDuringDelivery(8, 2)).toBe('triple-fault');
    expect([8, 13, 14, 17, 2, 18, 0x20].map(pushesErrorCode)).toEqual([true, true, true, true, false, false, false]);
  });
});

describe('pre-flight in long mode', () => {
  it('calls a complete switch safe', () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables()));
    expect(r.verdict).toBe('safe');
    expect(r.problems).toEqual([]);
    expect(r.chain).toEqual([]);
    expect(r.unknown).toEqual([]);
    expect(r.summary).toBe('safe: the next instruction and the stack work through the new tables, and delivery of #PF, #GP and #DF reaches its handlers');
    expect(r.checked.slice(0, 2)).toEqual([
      { what: 'next-instruction', va: 0xffffffff80001234n, access: 'exec', ok: true },
      { what: 'stack', va: 0xffffffff80023f78n, access: 'write', ok: true },
    ]);
    expect(r.checked).toContainEqual({ what: 'idt', va: 0xffffffff800110e0n, access: 'read', ok: true });
    expect(r.checked).toContainEqual({ what: 'gdt', va: 0xffffffff80010008n, access: 'read', ok: true });
    expect(r.checked).toContainEqual({ what: 'stack:#PF', va: 0xffffffff80023f50n, access: 'write', ok: true });
    expect(r.checked).toContainEqual({ what: 'handler:#DF', va: 0xffffffff80003000n, access: 'exec', ok: true });
    expect(r.checked.every((c) => c.ok)).toBe(true);
  });

  it("says 'fault' when the code is unmapped but the #PF handler works", () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), but('code')));
    expect(r.verdict).toBe('fault');
    expect(r.chain).toEqual([{ vector: 14, name: '#PF', errorCode: 0x10, cr2: 0xffffffff80001234n, cause: 'the fetch at RIP 0xffffffff80001234 faults (PT entry not present)' }]);
    expect(r.problems).toHaveLength(1);
    const p = problem(r, 'next-instruction');
    expect(p).toMatchObject({ va: 0xffffffff80001234n, access: 'exec', when: 'now' });
    expect(p.fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0x10, vector: 14 });
    expect(p.walk?.steps.map((s) => s.level)).toEqual(['PML4', 'PDPT', 'PD', 'PT']);
    expect(r.summary).toBe('fault: the fetch at RIP 0xffffffff80001234 faults (PT entry not present), and the #PF handler at 0xffffffff80002000 takes it');
  });

  it("says 'triple-fault' when the code and the IDT are unmapped", () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), but('code', 'idt')));
    expect(r.verdict).toBe('triple-fault');
    expect(vectors(r)).toEqual([14, 8, TRIPLE_FAULT]);
    expect(r.chain[1]).toEqual({
      vector: 8,
      name: '#DF',
      errorCode: 0,
      cr2: null,
      cause: "#PF while delivering #PF: the #PF handler's IDT entry at 0xffffffff800110e0 is not mapped",
    });
    expect(r.chain[2]!.name).toBe('triple fault');
    expect(whats(r)).toEqual(['next-instruction', 'idt', 'idt', 'idt', 'idt', 'idt']);
    expect(r.problems.map((p) => [p.va, p.when])).toEqual([
      [0xffffffff80001234n, 'now'],
      [0xffffffff800110e0n, 'on-exception'], // #PF
      [0xffffffff80011080n, 'on-exception'], // #DF
      [0xffffffff800110d0n, 'on-exception'], // #GP
      [0xffffffff80011020n, 'on-interrupt'], // NMI: the gate cannot even be read
      [0xffffffff80011120n, 'on-interrupt'], // #MC
    ]);
    const idt = r.problems[1]!;
    expect(idt.access).toBe('read');
    expect(idt.fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0x0 });
    expect(r.summary).toBe(
      "triple fault: the fetch at RIP 0xffffffff80001234 faults (PT entry not present), the #PF handler's IDT entry at 0xffffffff800110e0 is not mapped, so #DF, whose IDT entry at 0xffffffff80011080 is not mapped either",
    );
  });

  it('follows an unmapped stack to the #DF handler on a mapped IST stack', () => {
    const w = longWorld({ dfIst: 1 });
    const r = run(w, w.map(w.tables(), but('stack')));
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 8]);
    expect(r.chain[0]).toMatchObject({ errorCode: 0x2, cr2: 0xffffffff80023f78n });
    expect(whats(r)).toEqual(['stack', 'stack:#PF', 'stack:#GP']);
    expect(r.problems.slice(0, 1).map((p) => [p.va, p.access, p.fault?.errorCode])).toEqual([[0xffffffff80023f78n, 'write', 0x2]]);
    expect(problem(r, 'stack:#PF')).toMatchObject({ va: 0xffffffff80023f78n, access: 'write', when: 'on-exception' });
    expect(r.checked).toContainEqual({ what: 'tss', va: 0xffffffff80010124n, access: 'read', ok: true });
    expect(r.checked).toContainEqual({ what: 'stack:#DF', va: 0xffffffff80030fd0n, access: 'write', ok: true });
    expect(r.summary).toBe(
      "fault: the push at RSP-8 0xffffffff80023f78 faults (PT entry not present), the #PF handler's stack at 0xffffffff80023f78 is not mapped, so #DF, handled by its handler at 0xffffffff80003000 on the IST1 stack",
    );
  });

  it('triple-faults on an unmapped stack when #DF has no IST', () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), but('stack')));
    expect(r.verdict).toBe('triple-fault');
    expect(vectors(r)).toEqual([14, 8, TRIPLE_FAULT]);
    expect(whats(r)).toEqual(['stack', 'stack:#PF', 'stack:#DF', 'stack:#GP']);
    expect(problem(r, 'stack:#DF').fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0x2 });
  });

  it('triple-faults when the IST stack is not mapped either', () => {
    const w = longWorld({ dfIst: 1 });
    const r = run(w, w.map(w.tables(), but('stack', 'ist')));
    expect(r.verdict).toBe('triple-fault');
    expect(problem(r, 'stack:#DF')).toMatchObject({ va: 0xffffffff80030ff8n, access: 'write' });
    expect(r.summary).toContain('so #DF, whose stack at 0xffffffff80030ff8 is not mapped either');
  });

  it("says 'at-risk' when only the exception handlers are unmapped", () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), but('handlers', 'df')));
    expect(r.verdict).toBe('at-risk');
    expect(r.chain).toEqual([]);
    expect(r.problems.map((p) => [p.what, p.va, p.access, p.when, p.fault?.level, p.fault?.reason, p.fault?.errorCode])).toEqual([
      ['handler:#PF', 0xffffffff80002000n, 'exec', 'on-exception', 'PT', 'not-present', 0x10],
      ['handler:#GP', 0xffffffff80002100n, 'exec', 'on-exception', 'PT', 'not-present', 0x10],
      ['handler:#DF', 0xffffffff80003000n, 'exec', 'on-exception', 'PT', 'not-present', 0x10],
    ]);
    expect(r.summary).toBe('at risk: the next instruction and the stack are fine, but on an exception, the #PF handler at 0xffffffff80002000 is not mapped (and 2 more problems)');
  });

  it('models a #PF handler that cannot be fetched as #PF after #PF until the stack runs out, then #DF', () => {
    const w = longWorld({ dfIst: 1 });
    const r = run(w, w.map(w.tables(), but('code', 'handlers')));
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 14, 8]);
    expect(r.chain[1]).toMatchObject({ errorCode: 0x10, cr2: 0xffffffff80002000n });
    expect(r.chain[1]!.cause).toContain('until the stack runs out');
    expect(r.chain[2]!.cause).toBe('#PF while delivering #PF: the stack has run out');
    expect(r.summary).toBe(
      'fault: the fetch at RIP 0xffffffff80001234 faults (PT entry not present), the #PF handler at 0xffffffff80002000 is not mapped, so every #PF raises another until the stack runs out, so #DF, handled by its handler at 0xffffffff80003000 on the IST1 stack',
    );

    // Without an IST, #DF pushes onto the same exhausted stack.
    const w2 = longWorld();
    const r2 = run(w2, w2.map(w2.tables(), but('code', 'handlers')));
    expect(r2.verdict).toBe('triple-fault');
    expect(vectors(r2)).toEqual([14, 14, 8, TRIPLE_FAULT]);
    expect(r2.summary).toContain('so #DF, which pushes onto the same exhausted stack');
  });

  it('says the CPU hangs when the #PF handler cannot be fetched and #PF runs on an IST stack', () => {
    const w = longWorld({ pfIst: 1 });
    const r = run(w, w.map(w.tables(), but('code', 'handlers')));
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 14]);
    expect(r.chain[1]!.cause).toContain('the IST1 stack is reloaded from the TSS at every delivery, so this repeats forever');
    expect(r.summary).toContain('so the CPU hangs, taking #PF after #PF on the IST1 stack');
  });

  it('raises #GP then #DF when the IDT limit stops short of #PF', () => {
    const w = longWorld();
    const idtr = { base: LONG.idt, limit: 14 * 16 - 1 };
    const r = run(w, w.map(w.tables(), but('code')), { idtr });
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 8]);
    expect(r.chain[1]!.cause).toBe('#GP while delivering #PF: the #PF gate lies beyond the IDT limit (0xdf)');
    const p = problem(r, 'gate:#PF');
    expect(p).toMatchObject({ va: 0xffffffff800110e0n, access: 'read', fault: null, walk: null, when: 'on-exception' });
    expect(p.explanation).toBe('the IDT entry of #PF (IDT offset 0xe0, 16 bytes) lies beyond IDTR.limit 0xdf: delivering #PF raises #GP(0x73)');
    // #MC (vector 18) is beyond the limit too, but a vector without a gate is the kernel's choice, not a problem.
    expect(whats(r)).toEqual(['next-instruction', 'gate:#PF']);

    const atRisk = run(w, w.map(w.tables()), { idtr });
    expect(atRisk.verdict).toBe('at-risk');
    expect(whats(atRisk)).toEqual(['gate:#PF']);
  });

  it('raises #NP then #DF when the #PF gate is not present', () => {
    const w = longWorld();
    w.setGate(14, gate64(LONG.pf, { present: false }));
    const r = run(w, w.map(w.tables(), but('code')));
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 8]);
    expect(r.chain[1]!.cause).toBe('#NP while delivering #PF: the #PF gate is not present');
    expect(problem(r, 'gate:#PF').explanation).toBe('the IDT entry of #PF at 0xffffffff800110e0 is not present (P=0): delivering #PF raises #NP(0x73)');
  });

  it('rejects a gate type a long-mode IDT cannot hold', () => {
    const w = longWorld();
    w.setGate(13, gate64(LONG.gp, { type: 0xc }));
    const r = run(w, w.map(w.tables()));
    expect(r.verdict).toBe('at-risk');
    expect(problem(r, 'gate:#GP').explanation).toBe(
      'the IDT entry of #GP at 0xffffffff800110d0 is a call gate, which a long-mode IDT cannot hold: delivering #GP raises #GP(0x6b)',
    );
  });

  it('finds a handler on a user page that SMEP forbids', () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), ALL, { handlers: { user: true } }), { cr4: w.cpu.cr4 | CR4.SMEP });
    expect(r.verdict).toBe('at-risk');
    expect(whats(r)).toEqual(['handler:#PF', 'handler:#GP']);
    const p = problem(r, 'handler:#PF');
    expect(p.fault).toMatchObject({ reason: 'protection', errorCode: 0x11, denials: ['smep'] });
    expect(r.summary).toContain('the #PF handler at 0xffffffff80002000 faults (SMEP: a user page)');

    // Without SMEP the same tables are safe.
    expect(run(w, w.map(w.tables(), ALL, { handlers: { user: true } })).verdict).toBe('safe');
  });

  it("says 'at-risk' with IF=1 and an unmapped timer handler, and ignores it with IF=0", () => {
    const w = longWorld();
    const t = w.map(w.tables(), but('timer'));
    const on = run(w, t, { rflags: 0x202n });
    expect(on.verdict).toBe('at-risk');
    expect(on.problems).toHaveLength(1);
    expect(on.problems[0]).toMatchObject({ what: 'handler:int 0x20', va: 0xffffffff80004000n, access: 'exec', when: 'on-interrupt' });
    expect(on.problems[0]!.fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0x10 });
    expect(on.summary).toBe('at risk: the next instruction and the stack are fine, but on an interrupt, the int 0x20 handler at 0xffffffff80004000 is not mapped');

    const off = run(w, t, { rflags: 0x2n });
    expect(off.verdict).toBe('safe');
  });

  it('merges interrupt vectors that fail alike on the same page', () => {
    const w = longWorld();
    for (let v = 0x20; v <= 0x2f; v++) w.setGate(v, gate64(LONG.timer + BigInt((v - 0x20) * 16)));
    w.setGate(0x40, gate64(LONG.timer + 0x400n));
    const r = run(w, w.map(w.tables(), but('timer')), { rflags: 0x202n });
    expect(whats(r)).toEqual(['handler:int 0x20-0x2f,0x40']);
    expect(r.problems[0]!.va).toBe(0xffffffff80004000n);
    expect(r.problems[0]!.explanation).toMatch(/\(likewise for int 0x21-0x2f,0x40\)$/);
  });

  it('reports an unmapped GDT', () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables(), but('data')));
    expect(r.verdict).toBe('at-risk');
    expect(whats(r)).toEqual(['gdt']);
    expect(r.problems[0]).toMatchObject({ va: 0xffffffff80010008n, access: 'read', when: 'on-exception' });
    expect(r.summary).toContain("the #PF handler's code segment (selector 0x8) at 0xffffffff80010008 is not mapped");
  });

  it('lists a missing IDTR as unknown instead of guessing', () => {
    const w = longWorld();
    const { idtr: _, ...noIdtr } = w.cpu;
    const safe = preflight(w.mem, { ctx: w.ctx(w.map(w.tables())), cpu: noIdtr });
    expect(safe.verdict).toBe('safe');
    expect(safe.unknown).toEqual(['IDT: the target does not report IDTR, so exception and interrupt delivery was not checked']);
    expect(safe.summary).toBe('safe as far as checked: the next instruction and the stack work through the new tables; not checked: IDT');

    const fault = preflight(w.mem, { ctx: w.ctx(w.map(w.tables(), but('code'))), cpu: noIdtr });
    expect(fault.verdict).toBe('fault');
    expect(vectors(fault)).toEqual([14]);
    expect(fault.summary).toBe('fault: the fetch at RIP 0xffffffff80001234 faults (PT entry not present), what happens next is unknown (IDT not checked)');
  });

  it("does not check an IST stack when the target does not report TR's base", () => {
    const w = longWorld({ dfIst: 1 });
    const { tr: _, ...noTr } = w.cpu;
    const t = w.map(w.tables(), but('stack'));
    const r = preflight(w.mem, { ctx: w.ctx(t), cpu: noTr });
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 8]);
    expect(r.unknown).toEqual(["the IST1 stack: the target does not report TR's base, so the pushes of a delivery that switches stacks were not checked"]);
    expect(r.checked.some((c) => c.what === 'tss' || c.what === 'stack:#DF')).toBe(false);
  });

  it('switches to RSP0 when the fault comes from user mode', () => {
    const w = longWorld();
    const t = w.map(w.tables(), [...ALL, 'user']);
    const r = run(w, t, { rip: 0x400010n, rsp: 0x800000n, cs: { selector: 0x23 }, ss: { selector: 0x1b } });
    expect(r.verdict).toBe('fault');
    expect(r.chain).toEqual([{ vector: 14, name: '#PF', errorCode: 0x6, cr2: 0x7ffff8n, cause: 'the push at RSP-8 0x7ffff8 faults (PD entry not present)' }]);
    expect(r.checked).toContainEqual({ what: 'stack:#PF', va: 0xffffffff80023fd0n, access: 'write', ok: true });
    expect(r.summary).toBe('fault: the push at RSP-8 0x7ffff8 faults (PD entry not present), and the #PF handler at 0xffffffff80002000 on the RSP0 stack takes it');
  });

  it('raises #GP for a non-canonical RIP', () => {
    const w = longWorld();
    const r = run(w, w.map(w.tables()), { rip: 0x0000800000000000n });
    expect(r.verdict).toBe('fault');
    expect(r.chain).toEqual([{ vector: 13, name: '#GP', errorCode: 0, cr2: null, cause: 'the fetch at RIP 0x800000000000 faults (not canonical)' }]);
    expect(problem(r, 'next-instruction').fault).toMatchObject({ reason: 'non-canonical', level: null, vector: 13 });
  });

  it('reports a CR3 with bits above MAXPHYADDR as #GP on the MOV itself', () => {
    const w = longWorld();
    const t = w.map(w.tables());
    expect(t.root).toBe(0x100000);
    const r = run(w, t.cr3 | (1n << 45n));
    expect(r.verdict).toBe('fault');
    expect(whats(r)).toEqual(['cr3']);
    expect(r.problems[0]!.fault).toMatchObject({ level: 'CR3', reason: 'reserved-bit', vector: 13 });
    expect(r.chain).toEqual([{ vector: 13, name: '#GP', errorCode: 0, cr2: null, cause: 'loading CR3 0x200000100000 raises #GP(0) (CR3 has reserved bits set)' }]);
    expect(r.unknown).toHaveLength(1);
  });

  it('gives the same answer through asynchronous memory, and reads each frame once', async () => {
    const w = longWorld({ dfIst: 1 });
    const t = w.map(w.tables(), but('stack'));
    const asked: number[] = [];
    const counting: PhysMemory = {
      frame: (pa) => {
        asked.push(pa);
        return w.mem.frame(pa);
      },
    };
    const sync = preflight(counting, { ctx: w.ctx(t), cpu: w.cpu });
    expect(new Set(asked).size).toBe(asked.length);
    const viaAsync = await preflightAsync(asyncMemory(w.mem), { ctx: w.ctx(t), cpu: w.cpu });
    expect(viaAsync).toEqual(sync);
  });
});

describe('pre-flight in legacy modes', () => {
  it('follows #DF through a task gate into the address space of its TSS (32-bit paging)', () => {
    const w = legacyWorld('32-bit');
    const main = w.map(w.tables(), but('df', 'stack'));
    const dfSpace = w.map(w.tables(), ['df', 'ist', 'data']);
    w.setDfTss({ cr3: dfSpace.root });
    const r = run(w, main);
    expect(r.verdict).toBe('fault');
    expect(vectors(r)).toEqual([14, 8]);
    // 32-bit paging has no I/D bit: the push is a supervisor write to a page that is not present.
    expect(r.chain[0]).toMatchObject({ errorCode: 0x2, cr2: 0xc0123fecn });
    expect(whats(r)).toEqual(['stack', 'stack:#PF', 'stack:#GP']);
    expect(r.checked).toContainEqual({ what: 'gdt', va: 0xc0110020n, access: 'read', ok: true }); // the TSS descriptor
    expect(r.checked).toContainEqual({ what: 'tss', va: 0xc0110120n, access: 'write', ok: true }); // saving the outgoing task
    expect(r.checked).toContainEqual({ what: 'tss', va: 0xc0110200n, access: 'read', ok: true }); // the new TSS
    expect(r.checked).toContainEqual({ what: 'stack:#DF', va: 0xc0130ffcn, access: 'write', ok: true }); // the error code, on the task's stack
    expect(r.checked).toContainEqual({ what: 'handler:#DF', va: LEGACY.df, access: 'exec', ok: true });
    expect(r.summary).toBe(
      `fault: the push at RSP-4 0xc0123fec faults (PT entry not present), the #PF handler's stack at 0xc0123fec is not mapped, so #DF, handled by its handler at 0xc0103000 in the task of TSS 0x20 (CR3 0x${dfSpace.root.toString(16)})`,
    );
  });

  it("triple-faults when the task's tables lack the handler and the IDT", () => {
    const w = legacyWorld('32-bit');
    const main = w.map(w.tables(), but('df', 'stack'));
    const dfSpace = w.map(w.tables(), ['ist', 'data']);
    w.setDfTss({ cr3: dfSpace.root });
    const r = run(w, main);
    expect(r.verdict).toBe('triple-fault');
    expect(vectors(r)).toEqual([14, 8, 14, 8, TRIPLE_FAULT]);
    const handler = problem(r, 'handler:#DF');
    expect(handler.fault).toMatchObject({ level: 'PT', reason: 'not-present', errorCode: 0x0 });
    expect(handler.explanation).toMatch(new RegExp(`through the task's tables, CR3 0x${dfSpace.root.toString(16)}\\)$`));
    expect(r.summary).toContain("so #DF, whose task's first instruction at 0xc0103000 is not mapped either, so #PF, whose IDT entry at 0xc0111070 is not mapped either");
  });

  it('refuses a task gate to a busy TSS', () => {
    const w = legacyWorld('32-bit');
    w.setGate(8, gate32(0, { type: 0x5, selector: 0x18 })); // the current task's own TSS
    const r = run(w, w.map(w.tables()));
    expect(r.verdict).toBe('at-risk');
    expect(problem(r, 'gdt').explanation).toBe("the #DF task gate's TSS 0x18 is busy (the task is already running): #GP(0x19)");
  });

  it('takes ESP0 and SS0 from the TSS when a fault comes from ring 3', () => {
    const w = legacyWorld('32-bit');
    const main = w.map(w.tables(), [...ALL, 'user']);
    w.setDfTss({ cr3: main.root });
    const r = run(w, main, { rip: 0x400010n, rsp: 0x800000n, cs: { selector: 0x1b, base: 0n }, ss: { selector: 0x23, base: 0n } });
    expect(r.verdict).toBe('fault');
    expect(r.chain).toEqual([{ vector: 14, name: '#PF', errorCode: 0x6, cr2: 0x7ffffcn, cause: 'the push at RSP-4 0x7ffffc faults (PT entry not present)' }]); // 0x7ffffc shares PD[1] (4 MiB) with the user page
    expect(r.checked).toContainEqual({ what: 'tss', va: 0xc0110104n, access: 'read', ok: true }); // ESP0 and SS0
    expect(r.checked).toContainEqual({ what: 'gdt', va: 0xc0110010n, access: 'read', ok: true }); // SS0's descriptor
    expect(r.checked).toContainEqual({ what: 'stack:#PF', va: 0xc0123fe8n, access: 'write', ok: true }); // SS, ESP, EFLAGS, CS, EIP, error code
    expect(r.summary).toBe('fault: the push at RSP-4 0x7ffffc faults (PT entry not present), and the #PF handler at 0xc0102000 on the ring-0 stack takes it');
  });

  it('checks PAE tables: safe, an NX code page, and a PDPTE with reserved bits', () => {
    const w = legacyWorld('PAE');
    const main = w.map(w.tables());
    w.setDfTss({ cr3: main.root });
    const safe = run(w, main);
    expect(safe.verdict).toBe('safe');
    expect(safe.problems).toEqual([]);

    const nx = run(w, w.map(w.tables(), ALL, { code: { nx: true } }));
    expect(nx.verdict).toBe('fault');
    expect(nx.chain).toEqual([{ vector: 14, name: '#PF', errorCode: 0x11, cr2: LEGACY.rip, cause: 'the fetch at RIP 0xc0101234 faults (NX in the PT entry)' }]);
    expect(problem(nx, 'next-instruction').fault).toMatchObject({ level: 'PT', reason: 'protection', denials: ['no-execute'] });

    const rw = w.map(w.tables());
    rw.setEntry(0xc0000000n, 'PDPT', rw.getEntry(0xc0000000n, 'PDPT') | 0x2n);
    const bad = run(w, rw);
    expect(bad.verdict).toBe('fault');
    expect(whats(bad)).toEqual(['cr3']);
    expect(bad.problems[0]!.fault).toMatchObject({ level: 'PDPT', reason: 'reserved-bit', vector: 13 });
    expect(vectors(bad)).toEqual([13]);
    expect(bad.summary).toMatch(/^fault: loading CR3 0x[0-9a-f]+ raises #GP\(0\) \(reserved bit in the PDPT entry\); the old tables stay loaded$/);
  });

  it('notes unknown segment bases instead of guessing them silently', () => {
    const w = legacyWorld('32-bit');
    const main = w.map(w.tables());
    w.setDfTss({ cr3: main.root });
    const r = run(w, main, { cs: { selector: 0x08 }, ss: { selector: 0x10 } });
    expect(r.verdict).toBe('safe');
    expect(r.unknown).toEqual(['CS and SS bases: the target does not report them, so RIP and RSP were taken as linear addresses (flat segments)']);
    expect(r.summary).toMatch(/^safe as far as checked: .*; not checked: CS and SS bases$/);
  });
});
