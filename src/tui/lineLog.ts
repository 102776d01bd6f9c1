/**
 * A bounded log of text lines (the serial console, command output): appends complete lines and
 * partial ones, drops the oldest past its capacity.
 */

/** A ring of lines, with the line still being written kept apart. */
export class LineLog {
  private readonly lines: string[] = [];
  private partial = '';

  /** Keeps at most `capacity` complete lines. */
  constructor(readonly capacity = 2000) {}

  /** Appends text that may hold several lines, and may end inside one (CR and control codes are dropped). */
  write(text: string): void {
    // eslint-disable-next-line no-control-regex
    const clean = text.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    const parts = (this.partial + clean).split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.push(p);
  }

  /** Appends one complete line. */
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** The complete lines, then the partial one when there is one. */
  all(): string[] {
    return this.partial ? [...this.lines, this.partial] : [...this.lines];
  }

  /** The last `n` lines (the partial one included). */
  tail(n: number): string[] {
    const a = this.all();
    return a.slice(Math.max(0, a.length - n));
  }

  /** How many complete lines it holds. */
  get length(): number {
    return this.lines.length;
  }
}
