/**
 * `pagewalk run` against real QEMU (TCG) running the test kernel, stopped at its `mov cr3` by a
 * breakpoint: a script reads the stop over the gdbstub and over QMP, walks and asserts on the
 * tables, steps over the `mov cr3` and runs to a breakpoint; a failing assert about a broken
 * address space exits 1 with its line. Each answer is held against the kernel's manifest and
 * against QEMU's own `gva2gpa`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestKernel, mapTestKernel, TEST_KERNEL } from '../../src/image/testKernel.js';
import { describeQemu } from '../helpers/qemu.js';
import { jsonLines, runScript } from '../script/runCli.js';
import { bootLiveGuest, gva2gpa, status, stopAtCr3Write, type LiveGuest } from './liveGuest.js';

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
/** stderr without the notes a live target prints (where GDTR and IDTR came from). */
const withoutNotes = (stderr: string): string => stderr.split('\n').filter((l) => !l.startsWith('note: ')).join('\n');
const HH = TEST_KERNEL.higherHalf;

/** The main tables, and a space that forgets the kernel's code page (loading it faults on the next fetch, with an empty IDT). */
const k = buildTestKernel({
  spaces: {
    nocode: (pt) => {
      mapTestKernel(pt, { higherHalf: 'none' });
      pt.map(HH + BigInt(TEST_KERNEL.dataPa), TEST_KERNEL.dataPa, 0x1000, { nx: true, global: true });
      pt.map(HH + BigInt(TEST_KERNEL.stackPa), TEST_KERNEL.stackPa, 0x1000, { nx: true, global: true });
    },
  },
});
const K = k.manifest;

describeQemu('pagewalk run on real QEMU', (qemu) => {
  let g: LiveGuest;

  beforeAll(async () => {
    g = await bootLiveGuest(qemu, k);
    await stopAtCr3Write(g);
  });

  afterAll(async () => {
    await g?.q.stop();
  });

  /** Reads the stop at the `mov cr3`: the same over the gdbstub and over QMP. */
  const reading = [
    `assert $rip == ${hex(K.cr3Write)} && $cr3 == ${hex(K.cr3)}`,
    `assert $rax == ${hex(K.slotCr3)} "the loop loads the slot"`,
    'assert verdict($rax) == "at-risk" "an empty IDT: any exception would triple-fault"',
    `assert verdict(${hex(K.spaces.nocode!)}) == "triple-fault"`,
    `assert pa($rip) == ${hex(TEST_KERNEL.codePa)} + ($rip & 0xfff)`,
    'assert executable($rip) && !writable($rip) && !user($rip)',
    'assert writable($rsp - 8) && !executable($rsp - 8)',
    `assert pa(${hex(K.loopCount.va)}) == ${hex(K.loopCount.pa)}`,
    'assert !mapped(0x40000000) && faults(0x40000000, "read")',
    'walk $rip --access x',
    `walk $rip --access x --cr3 ${hex(K.spaces.nocode!)}`,
    `check --cr3 ${hex(K.spaces.nocode!)}`,
  ].join('\n');

  it.each([
    ['--gdb', () => ['--gdb', g.gdb]],
    ['--qmp', () => ['--qmp', g.qmp]],
  ])('reads the stop and the tables over %s', async (_name, args) => {
    const r = await runScript(reading, [...args(), '--json']);
    expect(withoutNotes(r.stderr)).toBe('');
    expect(r.status).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.filter((l) => l.command === 'assert').map((l) => [l.line, (l.result as { passed: boolean }).passed])).toEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [n, true]),
    );
    const [fetch, lost, check] = lines.slice(9) as { result: Record<string, unknown> }[];
    const qemuPa = await gva2gpa(g.q, K.cr3Write);
    expect(qemuPa).not.toBeNull();
    expect(fetch!.result).toMatchObject({ va: hex(K.cr3Write), mapped: true, pa: hex(qemuPa!), fault: null });
    expect(lost!.result).toMatchObject({ va: hex(K.cr3Write), cr3: hex(K.spaces.nocode!), mapped: false, fault: { reason: 'not-present', errorCode: '0x10' } });
    expect((check!.result as { preflight: { verdict: string } }).preflight.verdict).toBe('triple-fault');
    expect(await status(g.q)).toBe('debug');
  });

  it('a failing assert exits 1 with its line and the values, and leaves the guest where it was', async () => {
    const r = await runScript(
      [`set $nocode = ${hex(K.spaces.nocode!)}`, 'assert mapped($rip)', 'assert verdict($nocode) == "safe" "the next fetch survives the switch"', 'echo not reached'].join('\n'),
      ['--gdb', g.gdb],
    );
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('✓ mapped($rip)\n');
    expect(withoutNotes(r.stderr)).toBe(
      [
        '<stdin>:3: assertion failed: verdict($nocode) == "safe" (the next fetch survives the switch)',
        '   3 | assert verdict($nocode) == "safe" "the next fetch survives the switch"',
        '     |        ^^^^^^^^^^^^^^^^^^^^^^^^^^',
        `  $nocode = ${hex(K.spaces.nocode!)}`,
        '  verdict($nocode) = "triple-fault"',
        '',
      ].join('\n'),
    );
    expect(await status(g.q)).toBe('debug');
  });

  it('steps over the mov cr3 and runs to a breakpoint at the top of the loop', async () => {
    const r = await runScript(
      [
        'set $before = $cr3',
        'step',
        `assert $rip == ${hex(K.afterCr3Write)} && $cr3 == ${hex(K.slotCr3)}`,
        `break ${hex(K.loop)}`,
        'cont',
        `assert $rip == ${hex(K.loop)}`,
        'delete',
        'step 2',
        `assert $rip == ${hex(K.afterCr3Write)} "mov rax, [slot]; mov cr3, rax"`,
      ].join('\n'),
      ['--gdb', g.gdb, '--json'],
    );
    expect(withoutNotes(r.stderr)).toBe('');
    expect(r.status).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.find((l) => l.command === 'cont')).toEqual({ line: 5, command: 'cont', result: { stop: { cause: 'breakpoint', signal: 5 }, rip: hex(K.loop) } });
    expect(lines.filter((l) => l.command === 'assert').every((l) => (l.result as { passed: boolean }).passed)).toBe(true);
    expect(await status(g.q)).toBe('debug');
  });

  it('watch-cr3 --count 2 reports two loads of the slot and stops on the second, not yet executed', async () => {
    const r = await runScript(['watch-cr3 --count 2', `assert $rip == ${hex(K.cr3Write)} && $rax == ${hex(K.slotCr3)}`].join('\n'), ['--gdb', g.gdb, '--json']);
    expect(withoutNotes(r.stderr)).toBe('');
    expect(r.status).toBe(0);
    const events = jsonLines(r.stdout)
      .filter((l) => l.line === 1)
      .map((l) => l.result as Record<string, unknown>);
    const writes = events.filter((e) => e.event === 'cr3-write');
    expect(writes.map((w) => [w.index, w.rip, w.old, w.new, w.verdict])).toEqual([
      [1, hex(K.cr3Write), hex(K.cr3), hex(K.slotCr3), 'at-risk'],
      [2, hex(K.cr3Write), hex(K.slotCr3), hex(K.slotCr3), 'at-risk'],
    ]);
    expect(events.at(-1)).toEqual({ end: 'count', writes: 2, dangerous: 2 });
    expect(await status(g.q)).toBe('debug');
  });
});
