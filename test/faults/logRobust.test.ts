/**
 * The parser and explainer on damaged input: the log split into chunks at every offset (the same
 * events as in one piece), cut at every offset (never a throw, every line accounted for, a triple
 * fault only once its line is whole), and garbage lines inserted anywhere (the records and the
 * chains QEMU logged stay what they were).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { explainLog } from '../../src/faults/explainLog.js';
import { QemuLogParser, type LogEvent } from '../../src/faults/qemuLog.js';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'latin1');
const WRITE = fixture('qemu-7.2-pf-write-triple.log');
const LOOP = fixture('qemu-7.2-reset-loop.log');
const SERIAL = fixture('qemu-7.2-stderr-serial.log');

function parseChunks(chunks: string[]): { events: LogEvent[]; stats: { lines: number; recognised: number } } {
  const p = new QemuLogParser();
  const events = chunks.flatMap((c) => p.push(c));
  events.push(...p.end());
  return { events, stats: p.stats };
}

/** Every line from 1 to `lines` lies in some event's [line, endLine]. */
function uncovered(events: LogEvent[], lines: number): number[] {
  const covered = new Uint8Array(lines + 2);
  for (const e of events) for (let n = e.line; n <= e.endLine; n++) covered[n] = 1;
  const missing: number[] = [];
  for (let n = 1; n <= lines; n++) if (!covered[n]) missing.push(n);
  return missing;
}

/** Offsets of every line start and of the middle of every line. */
function lineOffsets(text: string): number[] {
  const out: number[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    out.push(start);
    if (nl < 0) break;
    out.push(start + ((nl - start) >> 1));
    start = nl + 1;
  }
  return out;
}

/** The records QEMU logged, without the dumps' grouping (garbage inside a reset dump may split off its FPU lines). */
function records(events: LogEvent[]): string[] {
  return events.flatMap((e) => {
    switch (e.kind) {
      case 'interrupt':
        return [`v=${e.vector} e=${e.errorCode} i=${e.softwareInt} rip=${e.ip} cr2=${e.cr2} cr3=${e.dump?.cr3}`];
      case 'check-exception':
        return [`check ${e.old} ${e.next}`];
      case 'triple-fault':
      case 'smm-enter':
      case 'smm-exit':
        return [e.kind];
      case 'cpu-reset':
        return [`reset ${e.cpu}`];
      case 'hardware-interrupt':
        return [`hw ${e.vector}`];
      default:
        return [];
    }
  });
}

describe('split into chunks anywhere', () => {
  const whole = parseChunks([WRITE]);

  it('gives the same events for a log split in two at every offset', () => {
    for (let k = 0; k <= WRITE.length; k++) {
      const split = parseChunks([WRITE.slice(0, k), WRITE.slice(k)]);
      if (JSON.stringify(split.events, bigints) !== JSON.stringify(whole.events, bigints)) expect.fail(`split at ${k} changed the events`);
    }
  });

  it('gives the same events for any split into many chunks (property)', () => {
    for (const text of [LOOP, SERIAL]) {
      const expected = JSON.stringify(parseChunks([text]).events, bigints);
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 0, max: text.length }), { maxLength: 40 }), (cuts) => {
          const at = [0, ...cuts.sort((a, b) => a - b), text.length];
          const chunks = at.slice(1).map((end, i) => text.slice(at[i], end));
          expect(JSON.stringify(parseChunks(chunks).events, bigints)).toBe(expected);
        }),
        { numRuns: 60 },
      );
    }
  });
});

describe('cut short anywhere', () => {
  it('never throws, accounts for every line, and calls it a triple fault only once "Triple fault" is whole', () => {
    const tripleEnd = WRITE.indexOf('Triple fault') + 'Triple fault'.length;
    for (let k = 0; k <= WRITE.length; k++) {
      const prefix = WRITE.slice(0, k);
      const { events, stats } = parseChunks([prefix]);
      const x = explainLog(events, stats);
      const missing = uncovered(events, stats.lines);
      if (missing.length > 0) expect.fail(`cut at ${k}: lines ${missing.join(',')} are in no event`);
      if ((x.outcome === 'triple-fault') !== k >= tripleEnd) expect.fail(`cut at ${k}: outcome ${x.outcome}`);
      const first = x.chains[0]?.links[0];
      if (first && (first.vector !== 14 || first.rawErrorCode !== 3)) expect.fail(`cut at ${k}: first exception ${first.name} ${first.rawErrorCode}`);
    }
  });

  it('on a reset loop cut at every line and mid-line: never throws, and a cut inside a chain is said', () => {
    for (const k of lineOffsets(LOOP)) {
      const { events, stats } = parseChunks([LOOP.slice(0, k)]);
      const x = explainLog(events, stats);
      expect(uncovered(events, stats.lines)).toEqual([]);
      const triples = (LOOP.slice(0, k).match(/Triple fault/g) ?? []).length;
      expect(x.counts.tripleFaults, `cut at ${k}`).toBe(triples);
      if (x.outcome === 'cut-short') expect(x.summary).toMatch(/^The log is cut short: it ends inside /);
    }
  });
});

describe('garbage lines inserted', () => {
  const NEAR_MISSES = [
    'v=0e e=0010',
    'check_exception old:',
    'check_exception old: 0xzz new 0xe',
    'Triple',
    'CPU Reset (CPU',
    'RAX=0000000000000000',
    'CR0=80010011 CR2=',
    'EFER=',
    'SMM:',
    'Servicing hardware INT=',
    '\u0000\u0001\u00ff\u001b[31m',
    '     0: v=0e',
  ];
  const garbage = fc.oneof(
    fc.constantFrom(...NEAR_MISSES),
    fc.string({ maxLength: 80 }).filter((s) => !s.includes('\n') && !s.includes('\r')),
  );

  it('leave the records and the chains as they were, and are reported with their line numbers', () => {
    for (const text of [WRITE, LOOP]) {
      const lines = text.split('\n').slice(0, -1);
      const base = parseChunks([text]);
      const baseX = explainLog(base.events, base.stats);
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: lines.length }), garbage), { maxLength: 12 }), (inserts) => {
          const damaged = [...lines];
          const sorted = [...inserts].sort((a, b) => b[0] - a[0]);
          for (const [at, g] of sorted) damaged.splice(at, 0, g);
          const { events, stats } = parseChunks([`${damaged.join('\n')}\n`]);
          expect(records(events)).toEqual(records(base.events));
          expect(uncovered(events, stats.lines)).toEqual([]);
          const x = explainLog(events, stats);
          expect([x.outcome, x.chains.map((c) => [c.oneLine, c.occurrences])]).toEqual([baseX.outcome, baseX.chains.map((c) => [c.oneLine, c.occurrences])]);
          expect(x.counts.unrecognised).toBe(inserts.length);
        }),
        { numRuns: 100 },
      );
    }
  });
});

function bigints(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}
