/**
 * The README's captured output stays true: every block that starts with `$ pagewalk ...` on an
 * offline target (`--example`, `--emu`, `emu --list`, or a file the tests hold: `qemu.log` is a real
 * QEMU 7.2 log among the fixtures) is run in process and compared with what the README shows. A
 * line `...` (at any indent) stands for any number of lines, a line ending in ` ...` for the rest
 * of that line, and timings (`in 84 ms`) for any figure; everything else must match exactly.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The files the README's captures name, and the fixtures they were captured from. */
const FILES: Record<string, string> = {
  'qemu.log': fileURLToPath(new URL('../faults/fixtures/qemu-7.2-pf-fetch-triple.log', import.meta.url)),
};

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
    const offline = argv.includes('--example') || argv.includes('--emu') || (argv[0] === 'emu' && argv[1] === '--list') || argv.some((a) => a in FILES);
    if (offline) out.push({ line: lines.indexOf(block[0]!) + 1, argv, shown: block.slice(1) });
  }
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regular expression for what the README shows: `...` lines match any lines, timings any figure. */
function pattern(shown: string[]): RegExp {
  const parts = shown.map((l) => {
    if (l.trim() === '...') return '(?:[^\\n]*\\n)*?';
    const cut = l.endsWith(' ...'); // the rest of a long line left out
    return escape(cut ? l.slice(0, -' ...'.length) : l).replace(/in \d+ ms/g, 'in \\d+ ms') + (cut ? '[^\\n]*\\n' : '\\n');
  });
  return new RegExp('^' + parts.join('') + '$');
}

describe('the README', () => {
  const all = captures(README);

  it('has captures of the offline commands (the tour)', () => {
    expect(all.map((c) => c.argv[0])).toEqual(expect.arrayContaining(['check', 'walk', 'map', 'fault', 'watch-cr3', 'explain-log', 'emu']));
  });

  for (const c of all) {
    it(`line ${c.line}: pagewalk ${c.argv.join(' ')}`, async () => {
      const r = await cli(c.argv.map((a) => FILES[a] ?? a));
      expect(r.stderr).toBe('');
      const named = Object.entries(FILES).reduce((out, [name, path]) => out.split(path).join(name).split(basename(path)).join(name), r.stdout);
      expect(named).toMatch(pattern(c.shown));
    });
  }
});
