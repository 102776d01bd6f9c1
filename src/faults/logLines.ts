/**
 * Text to numbered lines, for logs read in chunks of any size: a chunk may end in the middle of a
 * line (the rest comes with the next chunk), `\r\n` counts as one line end, and a last line without
 * its newline is handed out at the end marked as not ended (the log was cut there). Memory stays
 * bounded: a line longer than {@link MAX_LINE} characters keeps only its start.
 */

/** The longest line kept whole; the rest of a longer line is dropped (and counted). */
export const MAX_LINE = 4096;

/** One line of a log. */
export interface LogLine {
  /** 1-based line number. */
  number: number;
  /** The text, without the line end (at most {@link MAX_LINE} characters). */
  text: string;
  /** False for a last line the input ended without a newline. */
  ended: boolean;
  /** Characters dropped from an overlong line (0 for almost every line). */
  dropped: number;
}

/** Splits text chunks into lines; `push` returns the lines a chunk completes, `end` the cut last one. */
export class LineSplitter {
  private partial = '';
  private dropped = 0;
  private next = 1;

  /** Feeds a chunk; returns every line it completes, in order. */
  push(chunk: string): LogLine[] {
    const lines: LogLine[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl < 0) break;
      this.append(chunk, start, nl);
      lines.push(this.take(true));
      start = nl + 1;
    }
    this.append(chunk, start, chunk.length);
    return lines;
  }

  /** Ends the input: the last line when it had no newline, else nothing. */
  end(): LogLine[] {
    if (this.partial === '' && this.dropped === 0) return [];
    return [this.take(false)];
  }

  /** The number the next line will get (lines seen so far + 1). */
  get nextLine(): number {
    return this.next;
  }

  private append(chunk: string, from: number, to: number): void {
    const room = MAX_LINE + 1 - this.partial.length; // one more than kept, for a trailing '\r'
    const take = Math.min(room, to - from);
    if (take > 0) this.partial += chunk.slice(from, from + take);
    this.dropped += to - from - Math.max(take, 0);
  }

  private take(ended: boolean): LogLine {
    let text = this.partial;
    let dropped = this.dropped;
    if (ended && text.endsWith('\r') && dropped === 0) text = text.slice(0, -1);
    if (text.length > MAX_LINE) {
      dropped += text.length - MAX_LINE;
      text = text.slice(0, MAX_LINE);
    }
    this.partial = '';
    this.dropped = 0;
    return { number: this.next++, text, ended, dropped };
  }
}
