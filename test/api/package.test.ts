/**
 * The package as a consumer sees it: package.json points its main entry and types at the build,
 * `import { attach } from 'pagewalk'` works from plain node in another project, and TypeScript in
 * that project sees the API's types (a misuse fails to compile).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
let project: string;

beforeAll(() => {
  buildDist();
  // A project of its own with pagewalk installed, as `npm install pagewalk` would link it.
  project = mkdtempSync(join(tmpdir(), 'pagewalk-consumer-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(ROOT, join(project, 'node_modules', 'pagewalk'), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] } }),
  );
}, 180_000);

afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('the pagewalk package', () => {
  it('points main, types and exports at the build', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string; exports: { '.': { types: string; import: string } }; files: string[] };
    expect(pkg.main).toBe('./dist/index.js');
    expect(pkg.types).toBe('./dist/index.d.ts');
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(pkg.files).toContain('dist');
    expect(readFileSync(join(ROOT, 'dist/index.d.ts'), 'utf8')).toMatch(/export \* from '\.\/api\/index\.js'/);
  });

  it("imports { attach } from 'pagewalk' under plain node and walks the example machine", () => {
    writeFileSync(
      join(project, 'walk.mjs'),
      [
        "import { attach, ApiError, WsApiServer } from 'pagewalk';",
        'const s = await attach({ example: true });',
        "const w = await s.walk(0xffffffff80001234n, 'exec');",
        'let bad = null;',
        "try { await attach({ emu: 'nope' }); } catch (e) { bad = e instanceof ApiError ? e.code : String(e); }",
        'console.log(JSON.stringify({ pa: w.pa, pageSize: w.pageSize, bad, server: typeof WsApiServer.listen }));',
        'await s.close();',
      ].join('\n'),
    );
    const out = execFileSync(process.execPath, ['walk.mjs'], { cwd: project, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ pa: '0x201234', pageSize: 4096, bad: 'E_BAD_INPUT', server: 'function' });
  });

  it('gives TypeScript users the types: the shapes compile, a misuse does not', () => {
    writeFileSync(
      join(project, 'good.ts'),
      [
        "import { attach, type WalkJson, type MapRangeJson, type PagewalkSession, type StopJson } from 'pagewalk';",
        'const s: PagewalkSession = await attach({ emu: "good", cr3: 0x400000n });',
        "const w: WalkJson = await s.walk('0xffffffff80000000', { access: 'exec', user: false });",
        'const pa: string | null = w.pa;',
        'for await (const r of s.map({ from: 0xffff800000000000n })) { const x: MapRangeJson = r; void x; }',
        'const stop: StopJson = await s.step();',
        'console.log(pa, stop.cause);',
      ].join('\n'),
    );
    const ok = spawnSync(process.execPath, [TSC, '-p', project], { cwd: project, encoding: 'utf8' });
    expect(ok.stdout + ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    writeFileSync(join(project, 'bad.ts'), "import { attach } from 'pagewalk';\nconst s = await attach({ emu: 'good' });\nconst pa: number = (await s.walk(0)).pa;\nawait s.walk(0, 'jump');\nconsole.log(pa);\n");
    const bad = spawnSync(process.execPath, [TSC, '-p', project], { cwd: project, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/bad\.ts\(3,7\): error TS2322/);
    expect(bad.stdout).toMatch(/bad\.ts\(4,/);
    rmSync(join(project, 'bad.ts'));
  });
});
