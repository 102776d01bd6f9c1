/**
 * The emulator decodes with iced-x86, a CommonJS build around WebAssembly whose named exports
 * src/emu imports. This holds that the machine runs where pagewalk runs: compiled to plain
 * JavaScript under `node` (as `dist/` is), and from TypeScript under `tsx`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
// mov rax, 42; out 0x80, al is ignored; mov dx, 0x3f8; mov al, 0x21; out dx, al; hlt — under one 2 MiB identity page.
const SCRIPT = (from: string) => `
import { Machine } from '${from}';
const q = (v) => new Uint8Array(new BigUint64Array([v]).buffer);
const code = Uint8Array.from([0x48, 0xc7, 0xc0, 0x2a, 0, 0, 0, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x21, 0xee, 0xf4]);
const m = new Machine({
  ramSize: 1 << 20,
  memory: [{ pa: 0x1000, bytes: code }, { pa: 0x8000, bytes: q(0x9003n) }, { pa: 0x9000, bytes: q(0xa003n) }, { pa: 0xa000, bytes: q(0x83n) }],
  cpu: { rip: 0x1000n, cr0: 0x80000011n, cr3: 0x8000n, cr4: 0x20n, efer: 0x500n },
});
const stop = m.run();
console.log(stop.reason, m.getRegister('rax').toString(16), JSON.stringify(m.serialText()));
`;
const EXPECTED = 'halted 21 "!"';

describe('iced-x86 under ESM, for the emulator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-emu-esm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs compiled to JavaScript under plain node', () => {
    // The whole source tree: the emulator's servers import src/rsp and src/qmp.
    const transpile = (from: string, to: string): void => {
      mkdirSync(to, { recursive: true });
      for (const entry of readdirSync(from, { withFileTypes: true })) {
        if (entry.isDirectory()) transpile(join(from, entry.name), join(to, entry.name));
        else if (entry.name.endsWith('.ts')) {
          const js = ts.transpileModule(readFileSync(join(from, entry.name), 'utf8'), {
            compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
          }).outputText;
          writeFileSync(join(to, entry.name.replace(/\.ts$/, '.js')), js);
        }
      }
    };
    transpile(join(ROOT, 'src'), join(dir, 'src'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules/iced-x86'), join(dir, 'node_modules/iced-x86'));
    writeFileSync(join(dir, 'main.js'), SCRIPT('./src/emu/index.js'));
    expect(execFileSync(process.execPath, [join(dir, 'main.js')], { encoding: 'utf8' }).trim()).toBe(EXPECTED);
  });

  it('runs from TypeScript under tsx', () => {
    const script = join(dir, 'main.ts');
    writeFileSync(script, SCRIPT(join(ROOT, 'src/emu/index.js')));
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
    expect(out.trim()).toBe(EXPECTED);
  });
});
