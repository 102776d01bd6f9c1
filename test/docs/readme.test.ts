/**
 * The README's captured output stays true: every block that starts with `$ pagewalk ...` on an
 * offline target (`--example`, `--emu`, `emu --list`) is run in process and compared with what the
 * README shows. A line `...` (at any indent) stands for any number of lines, and timings
 * (`in 84 ms`) for any figure; everything else must match exactly.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

interface Capture {
  line: number;
  argv: string[];
  shown: string[];
}

/** The `$ pagewalk` captures of the README that need no file, QEMU or network. */
function captures(text: string): Capture[] {
  const lines = text.split('\n');
  const out: Capture[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(text)?$/.test(lines[i]!) || !lines[i + 1]?.startsWith('$ pagewalk ')) continue;
    const end = lines.indexOf('```', i + 1);
    const block = lines.slice(i + 1, end);
    i = end;
    const argv = block[0]!.slice('$ pagewalk '.length).split(/\s+/);
    const offline = argv.includes('--example') || argv.includes('--emu') || (argv[0] === 'emu' && argv[1] === '--list');
    if (offline) out.push({ line: lines.indexOf(block[0]!) + 1, argv, shown: block.slice(1) });
  }
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regular expression for what the README shows: `...` lines match any lines, timings any figure. */
function pattern(shown: string[]): RegExp {
  const parts = shown.map((l) => (l.trim() === '...' ? '(?:[^\\n]*\\n)*?' : escape(l).replace(/in \d+ ms/g, 'in \\d+ ms') + '\\n'));
  return new RegExp('^' + parts.join('') + '$');
}

describe('the README', () => {
  const all = captures(README);

  it('has captures of the offline commands (the tour)', () => {
    expect(all.map((c) => c.argv[0])).toEqual(expect.arrayContaining(['check', 'walk', 'map', 'fault', 'watch-cr3', 'emu']));
  });

  for (const c of all) {
    it(`line ${c.line}: pagewalk ${c.argv.join(' ')}`, async () => {
      const r = await cli(c.argv);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(pattern(c.shown));
    });
  }
});
