/**
 * Where each pane goes for a terminal size: a status line and the register bar on top, the command
 * line and the key hints at the bottom, and the panes between them in two columns on a wide
 * terminal (path over map on the left; fault, CR3 watch and serial on the right) or stacked on a
 * narrow one (path, fault and map only, when it is short too). Pure, so a resize is a new call.
 */

/** A rectangle in terminal cells. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The panes that hold content, in Tab order. */
export const PANES = ['path', 'fault', 'map', 'watch', 'serial'] as const;

/** A pane's name. */
export type PaneName = (typeof PANES)[number];

/** Where everything goes. */
export interface Layout {
  cols: number;
  rows: number;
  /** 'wide' (two columns), 'narrow' (stacked), or 'tiny' (too small for panes: only a message). */
  kind: 'wide' | 'narrow' | 'tiny';
  status: Rect;
  registers: Rect;
  panes: Record<PaneName, Rect | null>;
  command: Rect;
  keys: Rect;
}

/** Below this the TUI shows only a request for a bigger terminal. */
export const MIN_COLS = 60;
/** Below this the TUI shows only a request for a bigger terminal. */
export const MIN_ROWS = 16;
/** From this width the panes go into two columns. */
export const WIDE_COLS = 110;
/** A narrow terminal needs this many rows between the bars to show all five panes (else: path, fault, map). */
export const NARROW_ALL_ROWS = 24;

/** Options of {@link layout}. */
export interface LayoutOptions {
  /** Whether there is a serial console to show (else the CR3 watch takes its room). */
  serial: boolean;
}

const rect = (left: number, top: number, width: number, height: number): Rect => ({ left, top, width: Math.max(0, width), height: Math.max(0, height) });

/** Splits `total` cells into parts proportional to `weights`, summing to `total`, each at least `min` where `total` allows. */
export function split(total: number, weights: readonly number[], min = 3): number[] {
  min = Math.min(min, Math.floor(total / weights.length));
  const sum = weights.reduce((a, b) => a + b, 0);
  const parts = weights.map((w) => Math.max(min, Math.floor((total * w) / sum)));
  let over = parts.reduce((a, b) => a + b, 0) - total;
  // Take back what the minimums added from the largest parts; give the rounding remainder to the last.
  while (over > 0) {
    const i = parts.indexOf(Math.max(...parts));
    if (parts[i]! <= min) break;
    parts[i]!--;
    over--;
  }
  if (over < 0) parts[parts.length - 1]! -= over;
  return parts;
}

/** The layout for a `cols` x `rows` terminal. */
export function layout(cols: number, rows: number, o: LayoutOptions): Layout {
  const status = rect(0, 0, cols, 1);
  const registers = rect(0, 1, cols, 2);
  const command = rect(0, rows - 2, cols, 1);
  const keys = rect(0, rows - 1, cols, 1);
  const none: Record<PaneName, Rect | null> = { path: null, fault: null, map: null, watch: null, serial: null };
  if (cols < MIN_COLS || rows < MIN_ROWS) {
    return { cols, rows, kind: 'tiny', status, registers, panes: none, command, keys };
  }
  const top = 3;
  const height = rows - top - 2;
  const panes = { ...none };
  if (cols >= WIDE_COLS) {
    const leftWidth = Math.floor(cols * 0.6);
    const rightWidth = cols - leftWidth;
    const [pathH, mapH] = split(height, [45, 55], 5) as [number, number];
    panes.path = rect(0, top, leftWidth, pathH);
    panes.map = rect(0, top + pathH, leftWidth, mapH);
    const right = o.serial ? (split(height, [45, 27, 28], 4) as [number, number, number]) : (split(height, [50, 50], 4) as [number, number]);
    panes.fault = rect(leftWidth, top, rightWidth, right[0]);
    panes.watch = rect(leftWidth, top + right[0], rightWidth, right[1]);
    if (o.serial) panes.serial = rect(leftWidth, top + right[0] + right[1], rightWidth, right[2]!);
    return { cols, rows, kind: 'wide', status, registers, panes, command, keys };
  }
  if (height < NARROW_ALL_ROWS) {
    // Too short for five panes: path, fault and map; the watch and serial panes come back when it grows.
    const [pathH, faultH, mapH] = split(height, [36, 34, 30], 4) as [number, number, number];
    panes.path = rect(0, top, cols, pathH);
    panes.fault = rect(0, top + pathH, cols, faultH);
    panes.map = rect(0, top + pathH + faultH, cols, mapH);
    return { cols, rows, kind: 'narrow', status, registers, panes, command, keys };
  }
  const [pathH, faultH, mapH, bottomH] = split(height, [30, 24, 26, 20], 4) as [number, number, number, number];
  panes.path = rect(0, top, cols, pathH);
  panes.fault = rect(0, top + pathH, cols, faultH);
  panes.map = rect(0, top + pathH + faultH, cols, mapH);
  const bottom = top + pathH + faultH + mapH;
  if (o.serial) {
    const half = Math.floor(cols / 2);
    panes.watch = rect(0, bottom, half, bottomH);
    panes.serial = rect(half, bottom, cols - half, bottomH);
  } else {
    panes.watch = rect(0, bottom, cols, bottomH);
  }
  return { cols, rows, kind: 'narrow', status, registers, panes, command, keys };
}
