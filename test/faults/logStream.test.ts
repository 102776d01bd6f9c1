/**
 * A 100,000-line log streamed through the parser and the explainer, generated chunk by chunk and
 * never held whole: events come out while the input is still being produced (the parser holds at
 * most one record), and what the explainer keeps stays bounded however long the log (64 distinct
 * chains in detail, the rest counted; 20 sample lines).
 */
import { describe, expect, it } from 'vitest';
import { LogExplainer } from '../../src/faults/explainLog.js';
import { QemuLogParser, parseQemuLogStream } from '../../src/faults/qemuLog.js';

const x16 = (v: bigint | number) => v.toString(16).padStart(16, '0');
const Z = x16(0);

/** One handled #PF (22 lines), its CR2 depending on `n`, as QEMU 7.2 logs it. */
function pageFault(count: number, cr2: bigint): string[] {
  const ds = `0010 ${Z} ffffffff 00cf9300 DPL=0 DS   [-WA]`;
  return [
    'check_exception old: 0xffffffff new 0xe',
    `${String(count).padStart(6)}: v=0e e=0006 i=0 cpl=3 IP=0033:0000000000401136 pc=0000000000401136 SP=002b:00007ffd6d1c5e60 CR2=${x16(cr2)}`,
    `RAX=${Z} RBX=${Z} RCX=${Z} RDX=${Z}`,
    `RSI=${Z} RDI=${Z} RBP=${Z} RSP=00007ffd6d1c5e60`,
    `R8 =${Z} R9 =${Z} R10=${Z} R11=${Z}`,
    `R12=${Z} R13=${Z} R14=${Z} R15=${Z}`,
    'RIP=0000000000401136 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0',
    `ES =${ds}`,
    `CS =0033 ${Z} ffffffff 00affb00 DPL=3 CS64 [-RA]`,
    `SS =002b ${Z} ffffffff 00cff300 DPL=3 DS   [-WA]`,
    `DS =${ds}`,
    `FS =${ds}`,
    `GS =${ds}`,
    `LDT=0000 ${Z} 0000ffff 00008200 DPL=0 LDT`,
    'TR =0040 fffffe0000003000 0000206f 00008b00 DPL=0 TSS64-busy',
    'GDT=     fffffe0000001000 0000007f',
    'IDT=     fffffe0000000000 00000fff',
    `CR0=80050033 CR2=${x16(cr2)} CR3=0000000004c56000 CR4=003706f0`,
    `DR0=${Z} DR1=${Z} DR2=${Z} DR3=${Z} `,
    'DR6=00000000ffff0ff0 DR7=0000000000000400',
    `CCS=${Z} CCD=${Z} CCO=EFLAGS`,
    'EFER=0000000000000d01',
  ];
}

const TOTAL = 100_000;
/** Each round: a #PF (22 lines), a hardware interrupt line without its v= line, two lines of guest output. */
const ROUND = 25;

describe('a 100,000-line log, streamed', () => {
  it('is explained with bounded memory: events keep pace with the input, the explanation stays small', async () => {
    let produced = 0;
    let rounds = 0;
    async function* chunks(): AsyncGenerator<string> {
      let batch: string[] = [];
      while (produced < TOTAL) {
        const lines =
          produced + ROUND <= TOTAL
            ? [...pageFault(rounds, 0x404000n + BigInt(rounds) * 0x1000n), 'Servicing hardware INT=0x08', `guest: round ${rounds}`, 'guest: ok']
            : Array.from({ length: TOTAL - produced }, (_, i) => `guest: tail ${i}`);
        if (lines.length === ROUND) rounds++;
        batch.push(...lines);
        produced += lines.length;
        if (batch.length >= 500 || produced >= TOTAL) {
          yield `${batch.join('\n')}\n`;
          batch = [];
        }
      }
    }

    const parser = new QemuLogParser();
    const explainer = new LogExplainer();
    let events = 0;
    let maxLag = 0;
    for await (const e of parseQemuLogStream(chunks(), parser)) {
      events++;
      maxLag = Math.max(maxLag, produced - e.endLine);
      explainer.push(e);
    }
    const x = explainer.finish(parser.stats);

    expect(rounds).toBe(4000);
    expect(parser.stats).toEqual({ lines: TOTAL, recognised: rounds * 23 });
    // 2 records per round (check_exception, the #PF) + the Servicing line + 2 guest lines.
    expect(events).toBe(rounds * 5);
    // The parser never holds more than the chunk being read (500-odd lines) and one record.
    expect(maxLag).toBeLessThan(600);
    expect([x.outcome, x.chains.length, x.droppedChains, x.counts.exceptions, x.counts.hardwareInterrupts]).toEqual(['handled', 64, rounds - 64, rounds, rounds]);
    expect([x.unrecognised.length, x.counts.unrecognised, x.notes.length]).toEqual([20, rounds * 2, 1]);
    expect(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v)).length).toBeLessThan(400_000);
  });
});
