/**
 * The Node API: attach() to the example machine, the emulator and a dump, every method's answer in
 * the CLI's JSON shapes (held against the CLI's own --json), the stopped event, errors with stable
 * codes, and the gate that keeps a step from landing in the middle of a map.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ApiError, attach, attachTarget, type PagewalkSession, type StopJson } from '../../src/api/index.js';
import { writeElfCore } from '../../src/image/elfCore.js';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { cli } from '../helpers/cli.js';
import { manyRangesTarget, withControls } from '../serve/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'pagewalk-api-'));
const sessions: PagewalkSession[] = [];

async function open(o: Parameters<typeof attach>[0]): Promise<PagewalkSession> {
  const s = await attach(o);
  sessions.push(s);
  return s;
}

/** The ApiError a promise rejects with. */
async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(e)}`);
  return e;
}

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('attach() to the example machine', () => {
  const m = buildExample();

  it('answers regs, walk, check, fault and phys2virt exactly as the CLI --json does', async () => {
    const s = await open({ example: true });
    const hex = (v: bigint | number) => `0x${v.toString(16)}`;
    const same = async (argv: string[], got: unknown) => expect(got).toEqual(JSON.parse((await cli([...argv, '--example', '--json'])).stdout));
    await same(['walk', '--access', 'exec', hex(EXAMPLE.rip)], await s.walk(EXAMPLE.rip, 'exec'));
    await same(['walk', '--access', 'write', '--user', hex(EXAMPLE.rsp)], await s.walk(EXAMPLE.rsp, { access: 'write', user: true }));
    await same(['check', '--cr3', hex(m.kernelCr3)], await s.check(m.kernelCr3));
    await same(['fault', '--cr2', hex(EXAMPLE.rsp - 8n), '--error-code', '0x2'], await s.fault({ cr2: EXAMPLE.rsp - 8n, errorCode: 2 }));
    await same(['phys2virt', hex(EXAMPLE.framebufferPa)], await s.phys2virt(EXAMPLE.framebufferPa));
    const regs = await s.regs();
    const cliRegs = JSON.parse((await cli(['regs', '--example', '--json'])).stdout) as { notes: string[] };
    expect({ ...regs, notes: [] }).toEqual({ ...cliRegs, notes: [] });
  });

  it('predicts the triple fault of the kernel tables and lists what the switch loses', async () => {
    const s = await open({ example: true });
    const c = await s.check(`0x${m.kernelCr3.toString(16)}`);
    expect(c.preflight.verdict).toBe('triple-fault');
    expect(c.preflight.problems.map((p) => p.what)).toContain('stack');
    expect(c.lost.some((r) => BigInt(r.va) <= EXAMPLE.rsp && EXAMPLE.rsp < BigInt(r.va) + BigInt(r.size))).toBe(true);
    expect((await s.check(m.fixedCr3)).preflight.verdict).toBe('safe');
  });

  it('streams map() as an async iterator whose return value is the summary, and mapAll() agrees', async () => {
    const s = await open({ example: true });
    const it = s.map();
    const ranges = [];
    let r = await it.next();
    while (!r.done) {
      ranges.push(r.value);
      r = await it.next();
    }
    expect(r.value).toMatchObject({ ranges: ranges.length, reservedEntries: 0, truncated: [], unreadable: [] });
    const all = await s.mapAll();
    expect(all.ranges).toEqual(ranges);
    expect(all.cr3).toBe(`0x${m.loaderCr3.toString(16)}`);
    const kernelHalf = [];
    for await (const x of s.map({ from: 0xffff800000000000n, cr3: m.kernelCr3 })) kernelHalf.push(x.va);
    expect(kernelHalf).toContain(`0x${EXAMPLE.framebufferVa.toString(16)}`);
    expect(kernelHalf.every((va) => BigInt(va) >= 0xffff800000000000n)).toBe(true);
  });

  it('diffs two address spaces', async () => {
    const s = await open({ example: true });
    const d = await s.diff({ against: m.loaderCr3, cr3: m.kernelCr3 });
    expect(d).toMatchObject({ cr3: `0x${m.kernelCr3.toString(16)}`, against: `0x${m.loaderCr3.toString(16)}`, mode: '4-level' });
    expect(d.counts.removed).toBeGreaterThan(0);
    expect(d.entries.filter((e) => e.kind === 'removed')).toHaveLength(d.counts.removed);
    const cliDiff = JSON.parse((await cli(['diff', '--example', '--cr3', `0x${m.kernelCr3.toString(16)}`, '--against', `0x${m.loaderCr3.toString(16)}`, '--json'])).stdout) as unknown;
    expect(d).toEqual(cliDiff);
  });

  it('explains a QEMU log from a path, a text, and chunks', async () => {
    const s = await open({ example: true });
    const path = new URL('../faults/fixtures/qemu-7.2-pf-write-triple.log', import.meta.url).pathname;
    const a = await s.explainLog({ path }, { tables: false });
    expect(a.outcome).toBe('triple-fault');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(path, 'utf8');
    expect(await s.explainLog({ text }, { tables: false })).toEqual(a);
    const chunks = (async function* () {
      for (let i = 0; i < text.length; i += 97) yield Buffer.from(text.slice(i, i + 97), 'latin1');
    })();
    expect(await s.explainLog({ chunks }, { tables: false })).toEqual(a);
    const withTables = await s.explainLog({ text });
    expect(withTables.events.filter((e) => e.name === '#PF').every((e) => e.tables !== null)).toBe(true);
    expect((await apiError(s.explainLog({ text: 'hello\nworld\n' }))).code).toBe('E_BAD_INPUT');
    expect((await apiError(s.explainLog({ path: join(dir, 'missing.log') }))).code).toBe('E_BAD_INPUT');
  });

  it('cannot be driven: step, cont and breakpoints fail with E_UNSUPPORTED', async () => {
    const s = await open({ example: true });
    expect(s.debuggable).toBe(false);
    for (const p of [s.step(), s.cont(), s.interrupt(), s.setBreakpoint(EXAMPLE.rip)]) expect((await apiError(p)).code).toBe('E_UNSUPPORTED');
    expect((await apiError(s.writePhysical(0x1000, new Uint8Array([1])))).code).toBe('E_UNSUPPORTED');
  });
});

describe('attach() errors', () => {
  it('says what was wrong, with a stable code', async () => {
    expect((await apiError(attach({ emu: 'no-such-scenario' }))).message).toMatch(/valid scenarios are good/);
    expect((await apiError(attach({ emu: 'good', example: true }))).code).toBe('E_BAD_INPUT');
    expect((await apiError(attach({ gbd: '127.0.0.1:1234' } as never))).message).toMatch(/unknown option gbd/);
    expect((await apiError(attach({}))).code).toBe('E_BAD_INPUT');
    expect((await apiError(attach({ dump: join(dir, 'nope.core') }))).code).toBe('E_OPEN');
    expect((await apiError(attach({ example: true, cr3: -1 }))).code).toBe('E_BAD_INPUT');
    expect((await apiError(attach({ example: true, maxPhyAddr: 64 }))).code).toBe('E_BAD_INPUT');
    const s = await open({ example: true });
    expect((await apiError(s.walk('not an address'))).code).toBe('E_BAD_INPUT');
    expect((await apiError(s.walk(2 ** 60))).code).toBe('E_BAD_INPUT');
    expect((await apiError(s.walk(0, { access: 'jump' as never }))).code).toBe('E_BAD_INPUT');
    expect((await apiError(s.fault({ errorCode: 0x10000 }))).code).toBe('E_BAD_INPUT');
    expect((await apiError(s.mapAll({ from: 10, to: 5 }))).code).toBe('E_BAD_INPUT');
    await s.close();
    expect((await apiError(s.regs())).code).toBe('E_CLOSED');
  });

  it('reads a dump, with register overrides', async () => {
    const m = buildExample();
    const core = join(dir, 'example.core');
    await writeElfCore(m.mem, m.cpu, core);
    const s = await open({ dump: core, cr3: m.kernelCr3 });
    expect(s.info.kind).toBe('dump');
    expect((await s.regs()).cr3.value).toBe(`0x${m.kernelCr3.toString(16)}`);
    expect((await s.walk(EXAMPLE.rsp)).mapped).toBe(false);
    writeFileSync(join(dir, 'empty.bin'), '');
    expect((await apiError(attach({ dump: join(dir, 'empty.bin') }))).code).toMatch(/^E_(FORMAT|BAD_INPUT)$/);
  });
});

describe('attach() to the emulator', () => {
  const CR3_WRITE = 0xffffffff800000dfn;

  it('steps, runs to a breakpoint, and tells every listener (stopped)', async () => {
    const s = await open({ emu: 'good' });
    const seen: StopJson[] = [];
    s.on('stopped', (j) => seen.push(j));
    const step = await s.step();
    expect(step).toMatchObject({ cause: 'step', signal: 5, rip: '0xffffffff80000001', cr3: '0x310000', watch: null, exitCode: null });
    expect(await s.setBreakpoint(CR3_WRITE)).toEqual({ va: '0xffffffff800000df' });
    expect(s.breakpointList).toEqual(['0xffffffff800000df']);
    const hit = await s.cont();
    expect(hit).toMatchObject({ cause: 'breakpoint', rip: '0xffffffff800000df' });
    expect(seen).toEqual([step, hit]);
    expect((await s.regs()).rip).toBe('0xffffffff800000df');
    await s.deleteBreakpoint(CR3_WRITE);
    expect((await apiError(s.deleteBreakpoint(CR3_WRITE))).code).toBe('E_BAD_INPUT');
  });

  it("takes the scenario's labels as addresses: setBreakpoint('cr3_write'), walk('kmain+0x10')", async () => {
    const s = await open({ emu: 'good' });
    expect(await s.setBreakpoint('cr3_write')).toEqual({ va: '0xffffffff800000df' });
    expect((await s.walk('kmain+0x10')).va).toBe('0xffffffff80000023');
    expect((await apiError(s.walk('no_such_label'))).code).toBe('E_BAD_INPUT');
  });

  it('refuses reads while the guest runs, and interrupt() ends the run', async () => {
    const s = await open({ emu: 'good' });
    const { stop } = await s.resume();
    expect(s.running).toBe(true);
    expect((await apiError(s.regs())).code).toBe('E_RUNNING');
    expect((await apiError(s.step())).code).toBe('E_RUNNING');
    const i = await s.interrupt();
    expect(i?.cause).toBe('interrupted');
    expect(await stop).toEqual(i);
    expect(s.running).toBe(false);
    expect((await s.regs()).rip).toBe(i!.rip);
  });

  it('writes registers and memory', async () => {
    const s = await open({ emu: 'good' });
    await s.writeRegister('rip', 0xffffffff80000013n);
    expect((await s.regs()).rip).toBe('0xffffffff80000013');
    const w = await s.walk(0xffffffff80000000n);
    await s.writePhysical(w.steps[0]!.entryAddress, new Uint8Array(8));
    expect((await s.walk(0xffffffff80000000n)).fault?.reason).toBe('not-present');
    expect((await apiError(s.writeRegister('RIP; drop', 1))).code).toBe('E_BAD_INPUT');
  });

  it('watches CR3 writes, letting the loop read while the guest stands on the mov cr3', async () => {
    const s = await open({ emu: 'good' });
    const told: string[] = [];
    s.on('cr3Write', (e) => told.push(e.new));
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1500);
    const seen = [];
    const it = s.watchCr3({ signal: ac.signal });
    let r = await it.next();
    while (!r.done) {
      const e = r.value;
      const regs = await s.regs();
      expect(regs.rip).toBe(e.rip);
      expect(regs.cr3.value).toBe(e.old);
      expect((await s.walk(regs.rsp, { access: 'write', cr3: e.new })).mapped).toBe(true);
      expect((await apiError(s.step())).code).toBe('E_RUNNING');
      seen.push(e);
      r = await it.next();
    }
    clearTimeout(timer);
    expect(seen).toMatchObject([{ event: 'cr3-write', index: 1, rip: '0xffffffff800000df', old: '0x310000', new: '0x400000', verdict: 'safe' }]);
    expect(told).toEqual(['0x400000']);
    expect(r.value).toMatchObject({ end: 'interrupted', writes: 1, dangerous: 0 });
    expect((await s.regs()).cr3.value).toBe('0x400000');
  });

  it('leaves the guest on the mov cr3 when the loop breaks there', async () => {
    const s = await open({ emu: 'stack-unmapped' });
    const stops: StopJson[] = [];
    s.on('stopped', (j) => stops.push(j));
    let at = '';
    for await (const e of s.watchCr3({ count: 5 })) {
      expect(e.verdict).toBe('triple-fault');
      expect(e.problems.map((p) => p.what)).toContain('stack');
      at = e.rip;
      break;
    }
    expect(stops).toMatchObject([{ cause: 'interrupted', rip: at, cr3: '0x310000' }]);
    const regs = await s.regs();
    expect(regs).toMatchObject({ rip: at, cr3: { value: '0x310000' } });
    expect((await s.step()).rip).not.toBe(at);
    expect((await s.regs()).cr3.value).toBe('0x400000');
  });

  it('removes its breakpoints when it closes', async () => {
    const s = await attach({ emu: 'good' });
    await s.setBreakpoint(CR3_WRITE);
    const machine = (s.target as unknown as { machine: { breakpoints(): bigint[] } }).machine;
    expect(machine.breakpoints()).toEqual([CR3_WRITE]);
    await s.close();
    expect(machine.breakpoints()).toEqual([]);
  });
});

describe('sharing one target', () => {
  it('makes a step wait for a map in progress, and a map that breaks off releases the target', async () => {
    const target = withControls(manyRangesTarget(8));
    const s = await attachTarget(target);
    sessions.push(s);
    const it = s.map();
    await it.next();
    let stepped = false;
    const step = s.step().then(() => (stepped = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(stepped).toBe(false);
    expect(s.contended).toBe(true);
    await it.return(undefined as never);
    await step;
    expect(stepped).toBe(true);
    expect(target.control.steps).toBe(1);
    // A stream never read at all still lets go when returned.
    const m = await s.mapStream();
    await m.items.return(undefined as never);
    expect((await s.step()).cause).toBe('step');
  });

  it('emits stopped for stops nobody asked for, and targetLost once', async () => {
    const target = withControls(manyRangesTarget(1));
    const s = await attachTarget(target);
    sessions.push(s);
    const stops: StopJson[] = [];
    const lost: string[] = [];
    s.on('stopped', (j) => stops.push(j));
    s.on('targetLost', (l) => lost.push(l.message));
    target.control.stop({ cause: 'breakpoint', signal: 5 });
    await new Promise((r) => setTimeout(r, 10));
    expect(stops).toMatchObject([{ cause: 'breakpoint', rip: '0x40000000' }]);
    target.control.stop({ cause: 'exited', signal: null, exitCode: 1 });
    await new Promise((r) => setTimeout(r, 10));
    expect(lost).toHaveLength(1);
    expect(s.ended).toBe(true);
    expect((await apiError(s.regs())).code).toBe('E_LOST');
  });
});
