/**
 * The page faults an exception log reports (the emulator's, or QEMU's `-d int` log when pagewalk
 * started QEMU), fed as text as it grows: the fault pane shows the last one with its error code,
 * which no register holds.
 */
import { open } from 'node:fs/promises';
import { QemuLogParser } from '../faults/qemuLog.js';

/** A #PF as the log records it. */
export interface LoggedFault {
  cr2: bigint;
  errorCode: number;
  /** Where it was raised (QEMU's pc=). */
  rip: bigint;
  /** The log's line number, so a newer fault can be told from the same one. */
  line: number;
}

/**
 * Collects the #PF records of a log fed in chunks. A #PF raised while another exception was being
 * delivered (`check_exception old: 0xe new 0xe`) belongs to the chain of the one before it: `last`
 * is the first #PF of the last chain, the one that started the trouble.
 */
export class FaultFeed {
  private readonly parser = new QemuLogParser();
  private lastFault: LoggedFault | null = null;
  private count = 0;
  /** Whether the exception logged next is raised during another one's delivery. */
  private nested = false;

  /** Feeds a chunk of log text (split anywhere). */
  push(text: string): void {
    for (const e of this.parser.push(text)) {
      if (e.kind === 'check-exception') {
        this.nested = e.old !== null;
        continue;
      }
      if (e.kind !== 'interrupt') continue;
      const nested = this.nested;
      this.nested = false;
      if (e.vector !== 14 || e.softwareInt || e.cr2 === undefined || nested) continue;
      this.lastFault = { cr2: e.cr2, errorCode: e.errorCode, rip: e.pc, line: e.line };
      this.count++;
    }
  }

  /** The first #PF of the last chain seen, or null. */
  get last(): LoggedFault | null {
    return this.lastFault;
  }

  /** How many #PF records were seen. */
  get faults(): number {
    return this.count;
  }
}

/** Reads what a growing file has gained since the last call (a QEMU `-D` log); a missing file reads as nothing. */
export class FileTail {
  private offset = 0;

  constructor(readonly path: string) {}

  /** The new text (latin1), or '' when there is none. */
  async read(): Promise<string> {
    let fh;
    try {
      fh = await open(this.path, 'r');
    } catch {
      return '';
    }
    try {
      const { size } = await fh.stat();
      if (size < this.offset) this.offset = 0; // truncated or replaced: start over
      if (size === this.offset) return '';
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      this.offset += bytesRead;
      return buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  }
}
