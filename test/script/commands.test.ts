/**
 * Every read-only command of the language against the built-in example machine and the emulator's
 * `good` scenario, held against the one-shot CLI command that says the same: the same text, and a
 * JSON result equal to what `pagewalk CMD --json` prints. Then the language's own commands (echo,
 * set, help) and a whole script with variables flowing between lines.
 */
import { describe, expect, it } from 'vitest';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { cli } from '../helpers/cli.js';
import { jsonLines, runScript } from './runCli.js';

const m = buildExample();
const good = findScenario('good').build();
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** [script line, the CLI argv that must print the same]. */
type Case = [string, string[]];

const exampleCases: Case[] = [
  ['regs', ['regs']],
  ['walk $rip --access x', ['walk', hex(EXAMPLE.rip), '--access', 'exec']],
  ['walk $rip --access w', ['walk', hex(EXAMPLE.rip), '--access', 'write']],
  [`walk $rsp - 8 ${hex(EXAMPLE.framebufferVa)} 0x800000000000 --user`, ['walk', hex(EXAMPLE.rsp - 8n), hex(EXAMPLE.framebufferVa), '0x800000000000', '--user']],
  [`walk $rsp - 8 --access write --cr3 ${hex(m.kernelCr3)}`, ['walk', hex(EXAMPLE.rsp - 8n), '--access', 'write', '--cr3', hex(m.kernelCr3)]],
  ['map', ['map']],
  ['map --from 0xffffffff80000000 --to 0xffffffff8000ffff', ['map', '--from', '0xffffffff80000000', '--to', '0xffffffff8000ffff']],
  [`map --cr3 ${hex(m.kernelCr3)}`, ['map', '--cr3', hex(m.kernelCr3)]],
  [`diff --against $cr3 --cr3 ${hex(m.kernelCr3)}`, ['diff', '--cr3', hex(m.kernelCr3), '--against', hex(m.loaderCr3)]],
  ['check', ['check']],
  [`check --cr3 ${hex(m.kernelCr3)}`, ['check', '--cr3', hex(m.kernelCr3)]],
  [`check --cr3 ${hex(m.fixedCr3)}`, ['check', '--cr3', hex(m.fixedCr3)]],
  ['fault --cr2 $rip --error-code 0x3', ['fault', '--cr2', hex(EXAMPLE.rip), '--error-code', '0x3']],
  [`fault --cr2 $rsp - 8 --error-code 0x2 --cr3 ${hex(m.kernelCr3)} --rip 0xffffffff80001234`, ['fault', '--cr2', hex(EXAMPLE.rsp - 8n), '--error-code', '0x2', '--cr3', hex(m.kernelCr3), '--rip', '0xffffffff80001234']],
];

const goodCases: Case[] = [
  ['regs', ['regs']],
  ['walk $rip --access exec', ['walk', hex(good.symbols._start!), '--access', 'exec']],
  ['map', ['map']],
  [`map --cr3 ${hex(good.cr3.kernel!)}`, ['map', '--cr3', hex(good.cr3.kernel!)]],
  [`diff --against ${hex(good.cr3.loader!)} --cr3 ${hex(good.cr3.kernel!)}`, ['diff', '--cr3', hex(good.cr3.kernel!), '--against', hex(good.cr3.loader!)]],
  ['check', ['check']],
  ['fault --cr2 0xffff800000400000 - 8 --error-code 2', ['fault', '--cr2', '0xffff8000003ffff8', '--error-code', '2']],
];

describe.each([
  ['--example', ['--example'], exampleCases],
  ['--emu good', ['--emu', 'good'], goodCases],
] as const)('on %s, each command prints what the CLI prints', (_name, target, cases) => {
  it.each(cases)('%s', async (line, argv) => {
    const [text, json, oneShot, oneShotJson] = await Promise.all([
      runScript(line + '\n', [...target]),
      runScript(line + '\n', [...target, '--json']),
      cli([...argv, ...target]),
      cli([...argv, ...target, '--json']),
    ]);
    expect(text.status).toBe(0);
    expect(text.stdout).toBe(oneShot.stdout);
    expect(text.stdout.length).toBeGreaterThan(0);
    const lines = jsonLines(json.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({ line: 1, command: line.split(' ')[0], result: JSON.parse(oneShotJson.stdout) });
  });
});

describe('golden answers on the example machine', () => {
  it('walks the next instruction and the stack through the new tables', async () => {
    const r = await runScript(`set $new = ${hex(m.kernelCr3)}\nwalk $rip --access x\nwalk $rsp - 8 --access w --cr3 $new\n`, ['--example', '--json']);
    const [set, fetch, push] = jsonLines(r.stdout);
    expect(set).toEqual({ line: 1, command: 'set', result: { name: 'new', value: hex(m.kernelCr3) } });
    expect(fetch!.result).toMatchObject({ va: '0xffffffff80001234', mapped: true, pa: '0x201234', effective: { write: false, user: false, execute: true }, fault: null });
    expect(push!.result).toMatchObject({ va: '0xffff800007ffff78', cr3: hex(m.kernelCr3), mapped: false, fault: { reason: 'not-present', errorCode: '0x2' } });
    expect(r.status).toBe(0);
  });

  it('check of the kernel tables predicts the triple fault; the fixed ones are safe', async () => {
    const r = await runScript(`check --cr3 ${hex(m.kernelCr3)}\ncheck --cr3 ${hex(m.fixedCr3)}\n`, ['--example', '--json']);
    const [bad, fixed] = jsonLines(r.stdout) as { result: { preflight: { verdict: string; chain: { name: string }[] } } }[];
    expect(bad!.result.preflight.verdict).toBe('triple-fault');
    expect(bad!.result.preflight.chain.map((l) => l.name)).toEqual(['#PF', '#DF', 'triple fault']);
    expect(fixed!.result.preflight.verdict).toBe('safe');
  });
});

describe('the language commands', () => {
  it('echo interpolates $var and $(expr), keeps quoted text and $$, and splits \\n into lines', async () => {
    const r = await runScript(
      ['set $n = 0x10', 'echo rip=$rip n=$n sum=$(n_plus) # a comment'.replace('n_plus', '$n + 1'), 'echo "  two\\nlines # not a comment  "', 'echo price: $$5', 'echo'].join('\n'),
      ['--example'],
    );
    expect(r.stdout).toBe('rip=0xffffffff80001234 n=0x10 sum=0x11\n  two\nlines # not a comment  \nprice: $5\n\n');
    expect(r.status).toBe(0);
  });

  it('help lists every command and function, and one command with its options', async () => {
    const r = await runScript('help\nhelp walk\n', ['--example']);
    for (const word of ['walk VA...', 'watch-cr3 [--count N]', 'assert EXPR', 'mapped(VA)', 'verdict(CR3)', '$rip', '$cr3']) expect(r.stdout).toContain(word);
    expect(r.stdout).toContain('walk VA... [--access r|w|x] [--user] [--cr3 CR3]\n  the translation path of each address');
    expect(r.stdout).toMatch(/^ {2}--access r\|w\|x\s+the access to check \(default: read\)$/m);
  });

  it('every function answers on the example machine', async () => {
    const script = [
      `set $new = ${hex(m.kernelCr3)}`,
      `set $fixed = ${hex(m.fixedCr3)}`,
      'assert mapped($rip) && mapped($rsp) && !mapped(0x800000000000)',
      'assert pa($rip) == 0x201234 && pa($rsp) == 0x7ffff80',
      'assert faults($rip, "write") && !faults($rip, "exec") && faults($rip, "read", "user")',
      'assert !writable($rip) && executable($rip) && !user($rip)',
      'assert writable($rsp) && !executable($rsp)',
      'assert !writable(0x800000000000) && !executable(0x800000000000) && !user(0x800000000000)',
      'assert verdict($cr3) == "safe" && verdict($new) == "triple-fault" && verdict($fixed) == "safe"',
    ].join('\n');
    const r = await runScript(script, ['--example', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const asserts = jsonLines(r.stdout).filter((l) => l.command === 'assert');
    expect(asserts).toHaveLength(7);
    expect(asserts.every((a) => (a.result as { passed: boolean }).passed)).toBe(true);
  });
});
