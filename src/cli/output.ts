/**
 * Text output people like to read: colour (honouring NO_COLOR, FORCE_COLOR and non-TTY output),
 * aligned columns, sizes as 4K/2M/1G. JSON goes to stdout untouched; notes and warnings to stderr.
 */
import pc from 'picocolors';

/** Where the CLI writes, and how. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Standard input, for commands that read `-` (default: process.stdin). */
  stdin?: AsyncIterable<string | Uint8Array>;
}

/** The colour functions in use (identity functions when colour is off). */
export type Colors = ReturnType<typeof pc.createColors>;

/** Decides whether to colour: NO_COLOR (non-empty) wins, then FORCE_COLOR, then a TTY that is not dumb. */
export function colorEnabled(io: Io): boolean {
  if (io.env.NO_COLOR) return false;
  if (io.env.FORCE_COLOR && io.env.FORCE_COLOR !== '0') return true;
  return io.stdout.isTTY === true && io.env.TERM !== 'dumb';
}

/** The output side of a command. */
export class Output {
  readonly c: Colors;

  constructor(
    readonly io: Io,
    readonly json: boolean,
  ) {
    this.c = pc.createColors(!json && colorEnabled(io));
  }

  /** Writes one line to stdout. */
  line(text = ''): void {
    this.io.stdout.write(text + '\n');
  }

  /** Writes a JSON value on one line (JSON lines) or pretty-printed. */
  jsonValue(value: unknown, pretty = true): void {
    this.io.stdout.write(JSON.stringify(value, null, pretty ? 2 : undefined) + '\n');
  }

  /** A note to stderr (what was assumed or inferred). */
  note(text: string): void {
    const c = pc.createColors(colorEnabled({ ...this.io, stdout: this.io.stderr }));
    this.io.stderr.write(c.dim(`note: ${text}`) + '\n');
  }

  /** A warning to stderr. */
  warn(text: string): void {
    const c = pc.createColors(colorEnabled({ ...this.io, stdout: this.io.stderr }));
    this.io.stderr.write(c.yellow(`warning: ${text}`) + '\n');
  }
}

/** Visible width of a string, ignoring ANSI colour codes. */
export function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** Pads `s` to `width` visible characters (right-aligned when `right`). */
export function pad(s: string, width: number, right = false): string {
  const n = Math.max(0, width - visibleLength(s));
  return right ? ' '.repeat(n) + s : s + ' '.repeat(n);
}

/**
 * Lays out rows in aligned columns separated by two spaces; `right` lists right-aligned columns.
 * The last column is not padded.
 */
export function table(rows: string[][], right: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 && !right.has(i) ? cell : pad(cell, widths[i]!, right.has(i))))
      .join('  ')
      .trimEnd(),
  );
}

/** A size as people say it: 4K, 2M, 1G, 512G, 1.5M; exact bytes below 1K. */
export function humanSize(bytes: bigint | number): string {
  const b = BigInt(bytes);
  const units: [bigint, string][] = [
    [1n << 50n, 'P'],
    [1n << 40n, 'T'],
    [1n << 30n, 'G'],
    [1n << 20n, 'M'],
    [1n << 10n, 'K'],
  ];
  for (const [size, unit] of units) {
    if (b >= size) {
      if (b % size === 0n) return `${b / size}${unit}`;
      const tenths = (b * 10n) / size;
      return `${tenths / 10n}.${tenths % 10n}${unit}`;
    }
  }
  return `${b}`;
}

/** Rights as `rwx` letters (r always: x86 has no write-only or execute-only pages). */
export function rightsLetters(r: { write: boolean; execute: boolean }): string {
  return `r${r.write ? 'w' : '-'}${r.execute ? 'x' : '-'}`;
}
