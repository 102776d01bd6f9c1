#!/usr/bin/env node
// Assert that RIP, RSP and the IDT stay mapped across every CR3 switch. At each `mov cr3` the
// guest is stopped on the instruction, before it runs, and this walks the new tables for what the
// CPU needs right after it: the next instruction (a fetch), the next push (a write below RSP), and
// the whole IDT (reads, as exception delivery does). The first switch that would fault is
// reported with the walk's explanation and the guest is left standing on it; exit status 1.
//
//   node examples/cr3-guard.mjs --emu good              # passes: exit 0
//   node examples/cr3-guard.mjs --emu stack-unmapped    # the boot stack is lost: exit 1
//   node examples/cr3-guard.mjs --gdb 127.0.0.1:1234 --seconds 30
import { attachFromArgs } from './target.mjs';

const usage = 'cr3-guard.mjs (--gdb HOST:PORT | --emu SCENARIO) [--seconds N]';
const { session, values } = await attachFromArgs(usage, { seconds: { type: 'string', default: '5' } });
// A timer of our own: it keeps node alive while the guest idles (AbortSignal.timeout would not).
const stop = new AbortController();
const timer = setTimeout(() => stop.abort(), Number(values.seconds) * 1000);
const hex = (v) => `0x${v.toString(16)}`;
let switches = 0;
let failed = false;
try {
  for await (const e of session.watchCr3({ signal: stop.signal })) {
    switches++;
    const regs = await session.regs();
    const user = regs.cs !== null && (Number(regs.cs.selector) & 3) === 3;
    // mov cr3, r64 is 0F 22 /r: three bytes, four with the REX prefix that r8-r15 need.
    const next = BigInt(e.rip) + (/\br(8|9|1[0-5])\b/.test(e.instruction) ? 4n : 3n);
    const checks = [
      ['RIP', next, 'exec'],
      ['RSP', BigInt(regs.rsp) - 8n, 'write'],
    ];
    if (regs.idtr) {
      const base = BigInt(regs.idtr.base);
      checks.push(['IDT', base, 'read'], ['IDT end', base + BigInt(regs.idtr.limit), 'read']);
    }
    console.log(`CR3 switch #${e.index} at ${e.rip} (${e.instruction}): ${e.old} -> ${e.new}`);
    for (const [name, va, access] of checks) {
      const w = await session.walk(va, { access, user, cr3: e.new });
      if (w.fault) {
        failed = true;
        console.log(`  FAIL ${name.padEnd(7)} ${hex(va)} (${access}): ${w.fault.explanation}`);
      } else {
        console.log(`  ok   ${name.padEnd(7)} ${hex(va)} (${access}) -> ${w.pa}`);
      }
    }
    if (failed) break; // the guest stays on this mov cr3: look at it with pagewalk or GDB
  }
} finally {
  clearTimeout(timer);
  await session.close();
}
if (failed) {
  console.log('FAILED: a CR3 switch would leave the CPU without its code, stack or IDT (the guest was left before it)');
  process.exitCode = 1;
} else {
  console.log(`${switches} CR3 switch${switches === 1 ? '' : 'es'} checked: RIP, RSP and the IDT stay mapped`);
}
