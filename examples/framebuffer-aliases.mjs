#!/usr/bin/env node
// Find every virtual alias of the framebuffer: each linear range whose pages land anywhere in the
// framebuffer's physical range, in the loaded tables or in the ones at --cr3. Two writable
// aliases with different caching are a classic source of garbled pixels; none at all is the
// "forgot the framebuffer" bug. Exit status 1 when nothing maps it.
//
//   node examples/framebuffer-aliases.mjs --example                      # 0xfd000000, QEMU's VGA BAR
//   node examples/framebuffer-aliases.mjs --gdb 127.0.0.1:1234 --fb 0xfd000000 --fb-size 0x300000
import { attachFromArgs, human, rights } from './target.mjs';

const usage = 'framebuffer-aliases.mjs (--gdb HOST:PORT | --emu SCENARIO | --dump FILE | --example) [--cr3 X] [--fb PA] [--fb-size BYTES]';
const { session, values } = await attachFromArgs(usage, { fb: { type: 'string', default: '0xfd000000' }, 'fb-size': { type: 'string', default: '0x1000000' } });
const fbStart = BigInt(values.fb);
const fbEnd = fbStart + BigInt(values['fb-size']);
try {
  const regs = await session.regs();
  console.log(`framebuffer 0x${fbStart.toString(16)}-0x${(fbEnd - 1n).toString(16)} in CR3 ${regs.cr3.value}:`);
  let aliases = 0;
  for await (const r of session.map()) {
    const pa = BigInt(r.pa);
    const size = BigInt(r.size);
    // The part of this range whose physical addresses fall in the framebuffer.
    const lo = pa > fbStart ? pa : fbStart;
    const hi = pa + size < fbEnd ? pa + size : fbEnd;
    if (lo >= hi) continue;
    const va = BigInt(r.va) + (lo - pa);
    console.log(`  0x${va.toString(16).padStart(16, '0')}  -> 0x${lo.toString(16)}  ${human(hi - lo).padStart(5)}  ${rights(r)}  in ${human(r.pageSize)} pages`);
    aliases++;
  }
  if (aliases === 0) {
    console.log('  not mapped at all');
    process.exitCode = 1;
  } else {
    console.log(`${aliases} alias${aliases === 1 ? '' : 'es'}`);
  }
} finally {
  await session.close();
}
