/**
 * The screen's text from the TUI's state: the status line (run state, the stop, the warning ahead of
 * the notice), the fault pane when the target is lost, the map pane's title for tables not loaded,
 * the console wrapped, the command line with its cursor, and the demo's picker.
 */
import { describe, expect, it } from 'vitest';
import { LineLog } from '../../src/tui/lineLog.js';
import { paint } from '../../src/tui/paint.js';
import { commandLineText, paneText, pickerLines, statusLine, type SourceFacts } from '../../src/tui/screenText.js';
import type { TuiState } from '../../src/tui/state.js';

const p = paint(false, true);
const src: SourceFacts = { label: 'gdb 127.0.0.1:1234', consoleName: 'COM1', canReconnect: true, symbolize: undefined };

function state(over: Partial<TuiState> = {}): TuiState {
  return {
    run: 'stopped',
    stopped: 'stepped',
    notice: null,
    warning: null,
    lost: null,
    view: null,
    selection: null,
    walk: null,
    fault: null,
    check: null,
    map: null,
    mapLoading: false,
    canDrive: true,
    watch: { status: 'on', entries: [] },
    console: new LineLog(),
    output: new LineLog(),
    hasConsole: true,
    ...over,
  };
}

describe('the status line', () => {
  it('says where the guest is and why it stopped, then the notice', () => {
    expect(statusLine(state({ notice: { text: 'walked: see the path pane', level: 'info' } }), p, 100, src.label)).toBe(' pagewalk  gdb 127.0.0.1:1234  stopped (stepped)   walked: see the path pane');
    expect(statusLine(state({ run: 'running' }), p, 100, src.label)).toBe(' pagewalk  gdb 127.0.0.1:1234  running   ');
  });

  it('puts a warning before any notice, shortened to the room left', () => {
    const s = state({ warning: 'TRIPLE FAULT ahead: the mov cr3 at 0xffffffff800000d8 would load 0x400000', notice: { text: 'ignored', level: 'info' } });
    expect(statusLine(s, p, 80, src.label)).toBe(' pagewalk  gdb 127.0.0.1:1234  stopped (stepped)   ⚠ TRIPLE FAULT ahead: the mo…');
    expect(statusLine(s, p, 80, src.label)).toHaveLength(80);
  });
});

describe('the panes', () => {
  it('say the target is lost and how to go on', () => {
    const t = paneText('fault', state({ run: 'lost', lost: 'the connection to QEMU closed' }), p, 60, 10, src);
    expect(t.lines.slice(0, 2)).toEqual(['✗ The target is lost: the connection to QEMU closed', '  The screen shows the last stop. r reconnects, q quits.']);
    expect(paneText('fault', state({ run: 'exited', lost: 'the guest has exited' }), p, 60, 10, { ...src, canReconnect: false }).lines[1]).toBe('  The screen shows the last stop. q quits.');
  });

  it('title the map with its CR3, and say when those tables are not the loaded ones', () => {
    const map = { cr3: 0x400000n, vaBits: 48, ranges: [], filter: '', cursor: 0, notes: [] };
    expect(paneText('map', state({ map }), p, 60, 10, src).title).toBe('Map of CR3 0x400000');
    expect(paneText('map', state({ map: null, mapLoading: true }), p, 60, 10, src).lines).toEqual(['listing...']);
  });

  it('wrap console lines as a terminal would', () => {
    const console = new LineLog();
    console.write('kernel: 4-level page tables built, cr3=0x400000\nok\n');
    const t = paneText('serial', state({ console }), p, 20, 10, src);
    expect(t.title).toBe('Serial (COM1)');
    expect(t.lines).toEqual(['kernel: 4-level page', ' tables built, cr3=0', 'x400000', 'ok']);
  });
});

describe('the command line', () => {
  it('hints when idle, and shows what is typed with a cursor, its start cut when too long', () => {
    expect(commandLineText(null, p, 100)).toMatch(/^: type a command/);
    expect(commandLineText({ purpose: 'command', text: 'walk $rsp' }, paint(true, true), 100)).toBe('\x1b[1m\x1b[36m: \x1b[39m\x1b[22mwalk $rsp\x1b[7m \x1b[27m');
    expect(commandLineText({ purpose: 'filter', text: 'user' }, p, 100)).toBe('filter the map: user ');
    expect(commandLineText({ purpose: 'command', text: 'walk 0xffffffff80001234' }, p, 12)).toBe(': f80001234 ');
  });
});

describe('the scenario picker', () => {
  it('lists the scenarios, marks the running one, and describes the chosen one', () => {
    const items = [
      { name: 'good', title: 'correct tables', description: 'The control case.' },
      { name: 'stack-unmapped', title: "the loader's boot stack is not mapped", description: 'The kernel keeps the boot stack.' },
    ];
    expect(pickerLines(items, 1, 'stack-unmapped', p, 80)).toEqual([
      'Scenarios of the bundled emulator: each is a bug kernel developers hit',
      '',
      'good            correct tables',
      "stack-unmapped  the loader's boot stack is not mapped (running)",
      '',
      'The kernel keeps the boot stack.',
    ]);
  });
});
