/**
 * What feeds the panes besides the target: the exception log (the first #PF of the last chain, fed
 * in pieces cut anywhere; a file that grows), the console's lines, word wrapping, and the terminal
 * name blessed is given for each terminfo format.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/emu/machine.js';
import { findScenario } from '../../src/emu/scenarios/index.js';
import { FaultFeed, FileTail } from '../../src/tui/faultFeed.js';
import { LineLog } from '../../src/tui/lineLog.js';
import { terminalName, terminfoMagic } from '../../src/tui/terminal.js';
import { shorten, wrapWords } from '../../src/tui/text.js';

/** The exception log of a scenario run to its end, as the emulator writes it. */
function scenarioLog(name: string): string {
  let log = '';
  const built = findScenario(name).build();
  const m = new Machine({ ...built.config, log: { sink: (line) => (log += line + '\n') } });
  m.run({ maxInstructions: 1_000_000 });
  return log;
}

const tmp = mkdtempSync(join(tmpdir(), 'pagewalk-tui-feeds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the fault feed', () => {
  const log = scenarioLog('stack-unmapped');

  it('takes the first #PF of the chain that ended in the triple fault, not the nested ones', () => {
    expect(log).toContain('check_exception old: 0xe new 0xe');
    const feed = new FaultFeed();
    feed.push(log);
    expect(feed.last).toMatchObject({ cr2: 0xffff8000003ffff0n, errorCode: 0x2, rip: 0xffffffff800000e2n });
    expect(feed.faults).toBe(1);
  });

  it('finds the same fault whatever the pieces the log arrives in', () => {
    for (const size of [1, 7, 64, 333]) {
      const feed = new FaultFeed();
      for (let i = 0; i < log.length; i += size) feed.push(log.slice(i, i + size));
      expect(feed.last).toMatchObject({ cr2: 0xffff8000003ffff0n, errorCode: 0x2 });
    }
  });

  it('has nothing for a log without a #PF', () => {
    const feed = new FaultFeed();
    feed.push('pagewalk scenario good: kernel started\nCPU Reset (CPU 0)\n');
    expect(feed.last).toBeNull();
  });

  it('reads what a log file gained since the last time', async () => {
    const path = join(tmp, 'qemu.log');
    const tail = new FileTail(path);
    expect(await tail.read()).toBe('');
    writeFileSync(path, 'one\n');
    expect(await tail.read()).toBe('one\n');
    appendFileSync(path, 'two\n');
    expect(await tail.read()).toBe('two\n');
    expect(await tail.read()).toBe('');
    writeFileSync(path, 'x\n');
    expect(await tail.read()).toBe('x\n');
  });
});

describe('the console log', () => {
  it('keeps complete lines and the one being written, drops control codes and the oldest lines', () => {
    const l = new LineLog(3);
    l.write('boot\r\nkernel: \x1b[1mhello\x1b[0m\nhalf');
    expect(l.all()).toEqual(['boot', 'kernel: hello', 'half']);
    l.write(' a line\nb\nc\n');
    expect(l.all()).toEqual(['half a line', 'b', 'c']);
    expect(l.tail(2)).toEqual(['b', 'c']);
    expect(l.length).toBe(3);
  });
});

describe('text', () => {
  it('wraps words with a hanging indent, and cuts a word longer than a line', () => {
    expect(wrapWords('the push at RSP-8 faults because the PD entry is not present', 24, '  ', '    ')).toEqual(['  the push at RSP-8', '    faults because the', '    PD entry is not', '    present']);
    expect(wrapWords('0xffffffffffffffffffff', 12, '', '')).toEqual(['0xffffffffff', 'ffffffffff']);
    expect(wrapWords('', 10, '> ')).toEqual(['> ']);
  });

  it('shortens with an ellipsis', () => {
    expect(shorten('abcdef', 6)).toBe('abcdef');
    expect(shorten('abcdefg', 6)).toBe('abcde…');
  });
});

describe('the terminal name', () => {
  const dir = (name: string, magic: number[] | null): Record<string, string> => {
    const root = join(tmp, `terminfo-${name}-${magic?.[0] ?? 'none'}`);
    mkdirSync(join(root, name[0]!), { recursive: true });
    if (magic) writeFileSync(join(root, name[0]!, name), Buffer.from([...magic, 0, 0]));
    return { TERMINFO: root, HOME: tmp, TERMINFO_DIRS: '' };
  };

  it('keeps $TERM when its entry is in the format blessed reads', () => {
    const env = { ...dir('xterm-256color', [0x1a, 0x01]), TERM: 'xterm-256color' };
    expect(terminfoMagic('xterm-256color', env)).toBe(0o432);
    expect(terminalName(env)).toBe('xterm-256color');
  });

  it("names a terminal blessed ships when $TERM's entry has ncurses 6's 32-bit numbers", () => {
    expect(terminalName({ ...dir('pw-test-256color', [0x1e, 0x02]), TERM: 'pw-test-256color' })).toBe('xterm-256color');
    expect(terminalName({ ...dir('pw-test-term', [0x1e, 0x02]), TERM: 'pw-test-term' })).toBe('xterm');
  });

  it('leaves an unknown terminal to blessed, and drives xterm for a dumb or missing one', () => {
    expect(terminalName({ ...dir('pw-nowhere', null), TERM: 'pw-nowhere' })).toBe('pw-nowhere');
    expect(terminalName({ TERM: 'dumb' })).toBe('xterm');
    expect(terminalName({})).toBe('xterm');
  });

  it('ships the legacy xterm-256color for the TUI tests', () => {
    const env = { TERMINFO: join(import.meta.dirname, 'fixtures', 'terminfo'), TERM: 'xterm-256color', HOME: tmp };
    expect(terminfoMagic('xterm-256color', env)).toBe(0o432);
  });
});
