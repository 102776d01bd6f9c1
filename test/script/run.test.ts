/**
 * `pagewalk run` end to end, in process: a failing assert (exit 1, its line, a caret and the values),
 * syntax errors (exit 2, nothing runs), runtime errors with their line, `run -` from stdin and
 * from a file, `--json` lines, symbols with --elf, a dump as the target, and commands a target
 * cannot do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeElfCore } from '../../src/image/elfCore.js';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { cli } from '../helpers/cli.js';
import { elfWithSymbols } from './elfFixture.js';
import { jsonLines, runScript } from './runCli.js';

const m = buildExample();
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const dir = mkdtempSync(join(tmpdir(), 'pagewalk-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PREFLIGHT = [
  '# Will the kernel survive loading its own tables?',
  `set $new = ${hex(m.kernelCr3)}`,
  'assert mapped($rip) "the loader maps the kernel"',
  'assert verdict($new) == "safe" "loading the new tables is safe"',
  'echo not reached',
].join('\n');

describe('a failing assert', () => {
  it('stops the script with exit 1, its line, a caret under the expression and the values in it', async () => {
    const r = await runScript(PREFLIGHT, ['--example']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('✓ mapped($rip)\n');
    expect(r.stderr).toBe(
      [
        '<stdin>:4: assertion failed: verdict($new) == "safe" (loading the new tables is safe)',
        '   4 | assert verdict($new) == "safe" "loading the new tables is safe"',
        '     |        ^^^^^^^^^^^^^^^^^^^^^^^',
        '  $new = 0x140000',
        '  verdict($new) = "triple-fault"',
        '',
      ].join('\n'),
    );
  });

  it('with --json, prints the failed result as its last line', async () => {
    const r = await runScript(PREFLIGHT, ['--example', '--json']);
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout)).toEqual([
      { line: 2, command: 'set', result: { name: 'new', value: '0x140000' } },
      { line: 3, command: 'assert', result: { passed: true, expression: 'mapped($rip)', message: 'the loader maps the kernel', values: [{ expression: '$rip', value: '0xffffffff80001234' }] } },
      {
        line: 4,
        command: 'assert',
        result: {
          passed: false,
          expression: 'verdict($new) == "safe"',
          message: 'loading the new tables is safe',
          values: [
            { expression: '$new', value: '0x140000' },
            { expression: 'verdict($new)', value: '"triple-fault"' },
          ],
        },
      },
    ]);
  });

  it('is 0 with the fixed tables', async () => {
    const r = await runScript(PREFLIGHT.replace(hex(m.kernelCr3), hex(m.fixedCr3)).replace('echo not reached', 'echo reached'), ['--example']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('✓ mapped($rip)\n✓ verdict($new) == "safe"\nreached\n');
  });

  it('a walk or check that finds a fault is an answer, not a failure: only asserts set the status', async () => {
    const r = await runScript(`walk $rip --access w\ncheck --cr3 ${hex(m.kernelCr3)}\n`, ['--example']);
    expect(r.stdout).toContain('✗ #PF, error code 0x3');
    expect(r.stdout).toContain('TRIPLE FAULT');
    expect(r.status).toBe(0);
  });
});

describe('syntax errors', () => {
  it('run nothing, report every one with its line and a caret, exit 2', async () => {
    const r = await runScript('echo first\nwalk $rip +\nregs\nmap --form 0\n', ['--example']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      [
        "<stdin>:2:12: syntax error: expected a value after '+'",
        '   2 | walk $rip +',
        '     |            ^',
        '<stdin>:4:5: syntax error: map has no option --form (did you mean --from?): its options are --from, --to, --cr3',
        '   4 | map --form 0',
        '     |     ^^^^^^',
        '',
      ].join('\n'),
    );
  });

  it('with --json, one error object per line', async () => {
    const r = await runScript('walk $rip +\n', ['--example', '--json']);
    expect(r.status).toBe(2);
    expect(jsonLines(r.stdout)).toEqual([{ line: 1, error: { code: 'E_SYNTAX', message: "expected a value after '+'", column: 12 } }]);
  });

  it('are found before the target is opened', async () => {
    const r = await runScript('regs +\n', ['--gdb', '127.0.0.1:1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^<stdin>:1:6: syntax error: regs takes no arguments: regs$/m);
  });
});

describe('runtime errors', () => {
  it('stop the script at their line with a caret, exit 2; earlier lines have run', async () => {
    const r = await runScript('echo one\nwalk $stack\necho two\n', ['--example']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('one\n');
    expect(r.stderr).toBe(['<stdin>:2:6: no variable $stack: set it first (set $stack = ...)', '   2 | walk $stack', '     |      ^^^^^^', ''].join('\n'));
  });

  it('pa() of an unmapped address says why it is not mapped', async () => {
    const r = await runScript('assert pa(0x800000000000) != 0\n', ['--example', '--json']);
    expect(r.status).toBe(2);
    expect(jsonLines(r.stdout)).toEqual([
      {
        line: 1,
        command: 'assert',
        error: { code: 'E_VALUE', message:
            'pa(0x800000000000): not mapped: 0x800000000000 is not canonical: bits 63:47 must all equal bit 47 in 4-level paging, so the CPU raises #GP(0) (#SS for a stack access), not #PF', column: 8 },
      },
    ]);
  });

  it.each([
    ['step', 'step'],
    ['step 3', 'step'],
    ['cont', 'cont'],
    ['break 0xffffffff80001234', 'break'],
    ['delete', 'delete'],
  ])('%s on the example machine: the target cannot run', async (line, word) => {
    const r = await runScript(`regs\n${line}\n`, ['--example']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `<stdin>:2:1: ${word} needs a target that runs: --emu SCENARIO, or QEMU with --gdb HOST:PORT (this is the built-in example machine, which only has memory and registers)`,
    );
  });

  it('a register cannot be set', async () => {
    const r = await runScript('set $cr3 = 0x1000\n', ['--example']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('<stdin>:1:5: $cr3 is a register, read from the target at each stop; give your variable another name');
  });
});

describe('sources and targets', () => {
  it('reads a script file, naming it in messages', async () => {
    const file = join(dir, 'preflight.pw');
    writeFileSync(file, PREFLIGHT);
    const r = await cli(['run', file, '--example']);
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`${file}:4: assertion failed: verdict($new) == "safe" (loading the new tables is safe)`);
  });

  it('a missing script is bad input in one line', async () => {
    const r = await cli(['run', join(dir, 'nope.pw'), '--example']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`pagewalk: cannot read the script ${join(dir, 'nope.pw')}: no such file\n`);
  });

  it('runs on a dump: an ELF core of the example machine', async () => {
    const core = join(dir, 'example.core');
    await writeElfCore(m.mem, m.cpu, core);
    const r = await runScript(`assert $rip == ${hex(EXAMPLE.rip)} && pa($rip) == 0x201234\nstep\n`, ['--dump', core]);
    expect(r.stdout).toBe(`✓ $rip == ${hex(EXAMPLE.rip)} && pa($rip) == 0x201234\n`);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '<stdin>:2:1: step needs a target that runs: --emu SCENARIO, or QEMU with --gdb HOST:PORT (this is ELF core example.core (ELF64 x86-64, 128 MiB in 1 PT_LOAD), which only has memory and registers)\n   2 | step\n     | ^^^^\n',
    );
  });

  it('names addresses by symbol with --elf, and prints symbols in walks', async () => {
    const elf = join(dir, 'kernel.elf');
    writeFileSync(elf, elfWithSymbols({ kmain: EXAMPLE.rip, pf_handler: EXAMPLE.handlers.pf }));
    const r = await runScript('assert $rip == kmain && executable(pf_handler + 3)\nwalk kmain\necho $(kmain - 0x1234)\n', ['--example', '--elf', elf]);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[2]).toBe('0xffffffff80001234 <kmain>  4-level, CR3 0x100000, supervisor read');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('0xffffffff80000000');
    const missing = await runScript('walk start_kernel\n', ['--example', '--elf', elf]);
    expect(missing.stderr.split('\n')[0]).toBe("<stdin>:1:6: no symbol 'start_kernel' in the --elf file or the scenario's labels");
  });

  it('the register overrides of the command line apply to the script', async () => {
    const r = await runScript(`assert $cr3 == ${hex(m.kernelCr3)}\nassert !mapped($rsp)\n`, ['--example', '--cr3', hex(m.kernelCr3)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('a scenario of the bundled emulator names its code', () => {
  const CHECK_SWITCH = [
    '# the README\'s check-switch.pw',
    'break cr3_write',
    'cont',
    'set $new = $rax',
    'assert mapped($rsp - 8) "the stack is mapped now"',
    'assert verdict($new) == "safe" "loading $new is safe"',
    'walk $rsp - 8 --cr3 $new --access write',
  ].join('\n');

  it('stops on the scenario label cr3_write without --elf, and passes on good', async () => {
    const r = await runScript(CHECK_SWITCH, ['--emu', 'good']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/stopped \(breakpoint\): RIP 0xffffffff800000df <cr3_write>/);
    expect(r.stdout).toContain('✓ a supervisor write is allowed');
  });

  it('fails the verdict assert on stack-unmapped, with exit 1 and line 6', async () => {
    const r = await runScript(CHECK_SWITCH, ['--emu', 'stack-unmapped']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^<stdin>:6: assertion failed: verdict\(\$new\) == "safe"/);
    expect(r.stderr).toContain('verdict($new) = "triple-fault"');
  });

  it('an unknown label is an error naming it, exit 2 with its line and column', async () => {
    const r = await runScript('walk no_such_label', ['--emu', 'good']);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe("<stdin>:1:6: no symbol 'no_such_label' in the --elf file or the scenario's labels");
  });
});
