#!/usr/bin/env node
// Log every CR3 switch with what it lost: the old and new CR3 (and PCID), the pre-flight's
// verdict, and each range the old tables mapped that the new ones do not. Runs for --seconds, or
// until the guest stops for good (a triple fault, say), and says how it ended.
//
//   node examples/cr3-log.mjs --emu stack-unmapped
//   node examples/cr3-log.mjs --gdb 127.0.0.1:1234 --seconds 60
import { attachFromArgs, human, rights } from './target.mjs';

const usage = 'cr3-log.mjs (--gdb HOST:PORT | --emu SCENARIO) [--seconds N]';
const { session, values } = await attachFromArgs(usage, { seconds: { type: 'string', default: '5' } });
const stop = new AbortController();
const timer = setTimeout(() => stop.abort(), Number(values.seconds) * 1000);
session.on('stopped', (s) => s.reason && console.log(`watch ended: ${s.reason}`));
try {
  for await (const e of session.watchCr3({ signal: stop.signal })) {
    const pcid = e.pcid !== null ? ` PCID ${e.pcid}${e.noFlush ? ' (no flush)' : ''}` : '';
    console.log(`#${e.index} ${e.rip} ${e.instruction}: CR3 ${e.old} -> ${e.new}${pcid}  [${e.verdict}]`);
    if (e.lost.length === 0) console.log('    lost nothing');
    for (const r of e.lost) {
      const end = BigInt(r.va) + BigInt(r.size) - 1n;
      console.log(`    lost ${r.va}-0x${end.toString(16)}  ${human(r.size).padStart(5)}  ${rights(r)}  (was -> ${r.pa})`);
    }
    if (e.lostMore > 0) console.log(`    ... and ${e.lostMore} more`);
    if (e.verdict !== 'safe') console.log(`    ${e.summary}`);
  }
} finally {
  clearTimeout(timer);
  await session.close();
}
