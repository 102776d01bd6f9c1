/**
 * The executor as the TUI's command line uses it: one line at a time with a scope that lasts,
 * outputs as they come, a session swapped under it, registers as variables, and failures thrown
 * as typed errors (a failed assert after its result).
 */
import { describe, expect, it } from 'vitest';
import { sessionFor } from '../../src/cli/session.js';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { ScriptAssertionError, ScriptError, ScriptSyntaxError } from '../../src/script/errors.js';
import { ScriptExecutor, type ScriptOutput } from '../../src/script/executor.js';
import { MemoryTarget } from '../../src/target/memoryTarget.js';

const m = buildExample();
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

async function example(cr3?: bigint) {
  const target = new MemoryTarget(m.mem, m.cpu, { maxPhyAddr: 40, gbPages: true }, 'the built-in example machine');
  return sessionFor(target, cr3 === undefined ? {} : { cr3: hex(cr3) });
}

describe('one line at a time', () => {
  it('keeps variables between lines and reports each output as it comes', async () => {
    const seen: ScriptOutput[] = [];
    const x = new ScriptExecutor(await example(), { onOutput: (o) => seen.push(o) });
    expect(await x.executeLine('set $top = $rsp & ~0xfff', 1)).toHaveLength(1);
    expect(await x.executeLine('   # nothing here', 2)).toEqual([]);
    const [out] = await x.executeLine('echo top=$top', 3);
    expect(out).toEqual({ line: 3, command: 'echo', text: ['top=0xffff800007fff000'], warnings: [], result: { text: 'top=0xffff800007fff000' } });
    expect(seen.map((o) => [o.line, o.command])).toEqual([
      [1, 'set'],
      [3, 'echo'],
    ]);
    expect([...x.variables]).toEqual([['top', 0xffff800007fff000n]]);
  });

  it('a new session (the TUI refreshed at a stop) keeps the scope and answers from the new registers', async () => {
    const x = new ScriptExecutor(await example());
    await x.executeLine('set $loader = $cr3');
    x.setSession(await example(m.kernelCr3));
    const [out] = await x.executeLine('echo $loader -> $cr3: $(mapped($rsp))');
    expect(out!.text).toEqual([`${hex(m.loaderCr3)} -> ${hex(m.kernelCr3)}: false`]);
  });

  it('throws syntax errors, runtime errors and failed assertions as typed errors', async () => {
    const x = new ScriptExecutor(await example());
    await expect(x.executeLine('walk $rip +', 7)).rejects.toMatchObject({ name: 'ScriptSyntaxError', code: 'E_SYNTAX', span: { line: 7, column: 11, length: 1 } });
    await expect(x.executeLine('walk $nowhere', 8)).rejects.toBeInstanceOf(ScriptError);
    const seen: ScriptOutput[] = [];
    const y = new ScriptExecutor(await example(), { onOutput: (o) => seen.push(o) });
    const err = await y.executeLine(`assert pa($rsp) == ${hex(EXAMPLE.bootStackPa)} "the boot stack"`, 9).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScriptAssertionError);
    expect(err).toMatchObject({
      expression: 'pa($rsp) == 0x7ff0000',
      note: 'the boot stack',
      values: [
        { expression: '$rsp', value: '0xffff800007ffff80' },
        { expression: 'pa($rsp)', value: '0x7ffff80' },
      ],
      span: { line: 9, column: 7, length: 21 },
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.result).toMatchObject({ passed: false });
    expect(ScriptSyntaxError).not.toBe(ScriptError);
  });
});

describe('registers as variables', () => {
  it('reads the stop: RIP, RSP, control registers, GPRs, selectors, table bases, and GDB names', async () => {
    const x = new ScriptExecutor(await example());
    const [out] = await x.executeLine('echo $pc $sp $cr0 $cr3 $cr4 $efer $rflags $rax $rbp $cs $ss $tr $gdtr $idtr $cr2');
    expect(out!.text[0]!.split(' ')).toEqual([
      hex(EXAMPLE.rip),
      hex(EXAMPLE.rsp),
      '0x80010033',
      hex(m.loaderCr3),
      '0xa0',
      '0xd01',
      '0x2',
      hex(m.kernelCr3),
      hex(EXAMPLE.rsp),
      '0x8',
      '0x10',
      '0x28',
      hex(EXAMPLE.gdt),
      hex(EXAMPLE.idt),
      '0x0',
    ]);
  });

  it('a register the target does not report is an error naming the target', async () => {
    const x = new ScriptExecutor(await example());
    await expect(x.executeLine('echo $r15')).rejects.toThrow('the built-in example machine does not report $r15');
  });

  it('the command line\'s --cr3 shows in $cr3 and in what the functions answer', async () => {
    const x = new ScriptExecutor(await example(m.kernelCr3));
    const [out] = await x.executeLine('echo $cr3 $(mapped($rip)) $(mapped($rsp)) $(verdict($cr3))');
    expect(out!.text).toEqual([`${hex(m.kernelCr3)} true false triple-fault`]);
  });
});
