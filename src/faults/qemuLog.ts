/**
 * The parser of QEMU `-d int,cpu_reset` logs (QEMU 6 to 9, and pagewalk's emulator, which writes
 * the same formats): lines in, events out, sans I/O. Every line ends up in exactly one event: a
 * record (an interrupt with its register dump, a `check_exception`, a triple fault, a CPU reset,
 * SMM, a hardware interrupt), a register dump without its header, or an `unrecognised` line with
 * its number (guest output, QEMU's own messages, a line cut short). Nothing is dropped silently and
 * no input throws. At most one record is held open, so a log of any size streams in bounded memory.
 */
import { LineSplitter, type LogLine } from './logLines.js';
import { DumpBuilder, parseDumpLine, type CpuDump } from './logDump.js';
import { couldBeCutRecord, matchHeader, type CheckExceptionHeader, type Header, type InterruptHeader } from './logHeaders.js';

export type { CpuDump, SegmentDump, SegmentName, TableDump } from './logDump.js';
export type { CheckExceptionHeader, Header, InterruptHeader } from './logHeaders.js';

/** Where an event is in the log. */
export interface LogPosition {
  /** 1-based number of the event's first line. */
  line: number;
  /** Number of its last line (the end of its register dump). */
  endLine: number;
}

/** Records that carry a register dump. */
interface WithDump {
  /** The register dump that followed, or null when none did. */
  dump: CpuDump | null;
  /** True when the log ended before the dump was complete (or before it began). */
  cut: boolean;
}

/** A `v=` line and its register dump. */
export type InterruptEvent = InterruptHeader & LogPosition & WithDump;
/** A `check_exception` line. */
export type CheckExceptionEvent = CheckExceptionHeader & LogPosition;

/** One thing the log says. */
export type LogEvent =
  | InterruptEvent
  | CheckExceptionEvent
  | ({ kind: 'triple-fault' } & LogPosition)
  | ({ kind: 'cpu-reset'; cpu: number } & LogPosition & WithDump)
  | ({ kind: 'smm-enter' | 'smm-exit' } & LogPosition & WithDump)
  | ({ kind: 'hardware-interrupt'; vector: number; virtual: boolean } & LogPosition)
  /** Register dump lines with no header before them (the log starts inside a dump, or lost a line). */
  | ({ kind: 'dump'; dump: CpuDump; cut: boolean } & LogPosition)
  /** A line, or the part of a line, that QEMU's logging does not write. */
  | ({
      kind: 'unrecognised';
      text: string;
      /** Where in the line the text starts (0 unless a record followed it on the same line). */
      column: number;
      /** The input ended inside this line (no newline). */
      cut: boolean;
      /** A cut line that may be the start of a record or dump line QEMU was writing (not guest output waiting for its newline). */
      partialRecord: boolean;
    } & LogPosition);

type DumpKind = 'interrupt' | 'cpu-reset' | 'smm-enter' | 'smm-exit' | 'dump';
type OpenRecord = { header: Header | null; kind: DumpKind; line: number; dump: DumpBuilder };

const expectsDump = (h: Header): h is Header & { kind: Exclude<DumpKind, 'dump'> } =>
  h.kind === 'interrupt' || h.kind === 'cpu-reset' || h.kind === 'smm-enter' || h.kind === 'smm-exit';

/** The streaming parser: feed text or lines, collect events. */
export class QemuLogParser {
  private readonly splitter = new LineSplitter();
  private open: OpenRecord | null = null;
  private ended = false;
  private recognised = 0;
  private lines = 0;

  /** Feeds a chunk of text (any size, split anywhere); returns the events it completes. */
  push(chunk: string): LogEvent[] {
    const out: LogEvent[] = [];
    for (const line of this.splitter.push(chunk)) this.line(line, out);
    return out;
  }

  /** Ends the input; returns the events still held (a record whose dump ran to the end, a cut last line). */
  end(): LogEvent[] {
    if (this.ended) return [];
    this.ended = true;
    const out: LogEvent[] = [];
    for (const line of this.splitter.end()) this.line(line, out);
    this.close(out, true);
    return out;
  }

  /** Lines seen so far, and how many of them QEMU's logging wrote (a log with none is not a QEMU log). */
  get stats(): { lines: number; recognised: number } {
    return { lines: this.lines, recognised: this.recognised };
  }

  /** Feeds one whole line (without its newline); `ended: false` marks a last line cut short. */
  line(line: LogLine, out: LogEvent[]): void {
    this.lines = line.number;
    const text = line.text;
    const found = matchHeader(text, !line.ended);
    if (!found) {
      const d = line.ended ? parseDumpLine(text) : null;
      if (d) {
        this.recognised++;
        const o = this.open;
        if (o && o.dump.follows(d)) {
          o.dump.add(d, line.number);
        } else {
          this.close(out, false);
          const dump = new DumpBuilder(line.number);
          dump.add(d, line.number);
          this.open = { header: null, kind: 'dump', line: line.number, dump };
        }
        return;
      }
      // Text inside a complete dump ends it; inside an unfinished one (stderr mixed with serial
      // output), the dump may still go on after it.
      if (this.open?.dump.pastEfer) this.close(out, false);
      out.push(unrecognised(line, text, 0));
      return;
    }
    this.recognised++;
    this.close(out, false);
    if (found.start > 0 && text.slice(0, found.start).trim() !== '') out.push(unrecognised(line, text.slice(0, found.start), 0));
    const h = found.header;
    if (expectsDump(h)) {
      this.open = { header: h, kind: h.kind, line: line.number, dump: new DumpBuilder(line.number) };
    } else {
      out.push({ ...h, line: line.number, endLine: line.number } as LogEvent);
    }
    const rest = text.slice(found.end);
    if (rest.trim() !== '') out.push(unrecognised(line, rest, found.end));
  }

  private close(out: LogEvent[], atEnd: boolean): void {
    const o = this.open;
    if (!o) return;
    this.open = null;
    const dump = o.dump.started ? o.dump.dump : null;
    const cut = atEnd && !(dump?.complete ?? false);
    const endLine = dump ? Math.max(dump.lastLine, o.line) : o.line;
    if (o.kind === 'dump') out.push({ kind: 'dump', dump: dump!, cut, line: o.line, endLine });
    else out.push({ ...(o.header as Header), line: o.line, endLine, dump, cut } as LogEvent);
  }
}

function unrecognised(line: LogLine, text: string, column: number): LogEvent {
  const cut = !line.ended;
  return { kind: 'unrecognised', text, column, cut, partialRecord: cut && column === 0 && couldBeCutRecord(text), line: line.number, endLine: line.number };
}

/** Parses a whole log held in memory. */
export function parseQemuLog(text: string): LogEvent[] {
  const p = new QemuLogParser();
  return [...p.push(text), ...p.end()];
}

/** Parses a log that arrives in chunks (a file stream, stdin), yielding events as they complete. */
export async function* parseQemuLogStream(chunks: AsyncIterable<string | Uint8Array>, parser = new QemuLogParser()): AsyncGenerator<LogEvent> {
  const decoder = new TextDecoder('latin1');
  for await (const chunk of chunks) {
    yield* parser.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
  }
  yield* parser.end();
}
