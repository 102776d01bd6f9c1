/**
 * Where the panes go: two columns on a wide terminal, stacked on a narrow one (three panes when it
 * is short too), a request for a bigger terminal below 60x16; every rectangle inside the screen,
 * none overlapping, the bars in place.
 */
import { describe, expect, it } from 'vitest';
import { layout, split, PANES, type Layout, type Rect } from '../../src/tui/layout.js';

function rects(l: Layout): Rect[] {
  return [l.status, l.registers, l.command, l.keys, ...PANES.map((p) => l.panes[p]).filter((r): r is Rect => r !== null)];
}

function overlap(a: Rect, b: Rect): boolean {
  return a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;
}

describe('layout', () => {
  it('puts path over map on the left and fault, watch, serial on the right of a wide terminal', () => {
    const l = layout(120, 40, { serial: true });
    expect(l.kind).toBe('wide');
    expect(l.panes).toEqual({
      path: { left: 0, top: 3, width: 72, height: 15 },
      fault: { left: 72, top: 3, width: 48, height: 15 },
      map: { left: 0, top: 18, width: 72, height: 20 },
      watch: { left: 72, top: 18, width: 48, height: 9 },
      serial: { left: 72, top: 27, width: 48, height: 11 },
    });
    expect(l.command).toEqual({ left: 0, top: 38, width: 120, height: 1 });
    expect(l.keys).toEqual({ left: 0, top: 39, width: 120, height: 1 });
  });

  it('gives the watch the serial pane\'s room when there is no console', () => {
    const l = layout(120, 40, { serial: false });
    expect(l.panes.serial).toBeNull();
    expect(l.panes.watch).toEqual({ left: 72, top: 20, width: 48, height: 18 });
  });

  it('stacks the panes on a narrow terminal, and keeps three when it is short', () => {
    const tall = layout(90, 40, { serial: true });
    expect(tall.kind).toBe('narrow');
    expect(PANES.map((p) => tall.panes[p]?.top)).toEqual([3, 13, 21, 30, 30]);
    expect(tall.panes.watch!.width + tall.panes.serial!.width).toBe(90);
    const short = layout(80, 24, { serial: true });
    expect(short.panes.watch).toBeNull();
    expect(short.panes.serial).toBeNull();
    expect([short.panes.path!.height, short.panes.fault!.height, short.panes.map!.height]).toEqual([6, 6, 7]);
  });

  it('asks for a bigger terminal below 60x16', () => {
    expect(layout(59, 30, { serial: true }).kind).toBe('tiny');
    expect(layout(100, 15, { serial: true }).kind).toBe('tiny');
    expect(PANES.every((p) => layout(59, 30, { serial: true }).panes[p] === null)).toBe(true);
    expect(layout(60, 16, { serial: true }).kind).toBe('narrow');
  });

  it('keeps every rectangle on the screen and apart from the others, at any size', () => {
    for (let cols = 60; cols <= 240; cols += 7) {
      for (let rows = 16; rows <= 80; rows += 5) {
        for (const serial of [true, false]) {
          const all = rects(layout(cols, rows, { serial }));
          for (const r of all) {
            expect(r.left + r.width).toBeLessThanOrEqual(cols);
            expect(r.top + r.height).toBeLessThanOrEqual(rows);
            expect(r.height).toBeGreaterThan(0);
          }
          for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) expect(overlap(all[i]!, all[j]!)).toBe(false);
        }
      }
    }
  });
});

describe('split', () => {
  it('divides by weight, sums to the total, and honours the minimum where the total allows', () => {
    expect(split(31, [45, 55], 5)).toEqual([13, 18]);
    expect(split(20, [1, 8], 6)).toEqual([6, 14]);
    expect(split(10, [1, 1, 1], 4)).toEqual([3, 3, 4]);
    for (let total = 3; total < 60; total++) expect(split(total, [30, 24, 26, 20], 4).reduce((a, b) => a + b, 0)).toBe(total);
  });
});
