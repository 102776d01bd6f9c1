/**
 * iced-x86 is a CommonJS build around WebAssembly; src/asm imports its named exports. This holds
 * that the import works where pagewalk runs: compiled to plain JavaScript under `node` (as `dist/`
 * is), and straight from TypeScript under `tsx` (as scripts and benchmarks run).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = (from: string) => `
import { Assembler, qword, ref } from '${from}';
import { cr3, rax } from '${from}';
const a = new Assembler(64).label('loop').mov(rax, qword('slot')).mov(cr3, rax).jmp('loop').label('slot').dq(ref('loop'));
const code = a.assemble(0xffffffff80101000n);
console.log(Buffer.from(code.bytes).toString('hex'), code.address('slot').toString(16));
`;
// mov rax, [rel slot]; mov cr3, rax; jmp loop; slot: dq loop
const EXPECTED = '488b0505000000' + '0f22d8' + 'ebf4' + '00101080ffffffff' + ' ffffffff8010100c';

describe('iced-x86 under ESM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagewalk-esm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('works compiled to JavaScript under plain node', () => {
    const out = join(dir, 'asm');
    mkdirSync(out);
    for (const f of readdirSync(join(ROOT, 'src/asm')).filter((n) => n.endsWith('.ts'))) {
      const js = ts.transpileModule(readFileSync(join(ROOT, 'src/asm', f), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      }).outputText;
      writeFileSync(join(out, f.replace(/\.ts$/, '.js')), js);
    }
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules/iced-x86'), join(dir, 'node_modules/iced-x86'));
    writeFileSync(join(dir, 'main.js'), SCRIPT('./asm/index.js'));
    expect(execFileSync(process.execPath, [join(dir, 'main.js')], { encoding: 'utf8' }).trim()).toBe(EXPECTED);
  });

  it('works from TypeScript under tsx', () => {
    const script = join(dir, 'main.ts');
    writeFileSync(script, SCRIPT(join(ROOT, 'src/asm/index.js')));
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
    expect(out.trim()).toBe(EXPECTED);
  });
});
