#!/usr/bin/env node
// Print the kernel half of the address space: every mapping from the first canonical address of
// the upper half (0xffff800000000000 in 4-level paging, 0xff00000000000000 in 5-level), coalesced
// into ranges, with rights, page size and where it goes.
//
//   node examples/kernel-half.mjs --gdb 127.0.0.1:1234        # a QEMU started with -s
//   node examples/kernel-half.mjs --emu good                  # the bundled emulator
//   node examples/kernel-half.mjs --example --cr3 0x140000    # tables not loaded yet
import { attachFromArgs, human, rights } from './target.mjs';

const { session } = await attachFromArgs('kernel-half.mjs (--gdb HOST:PORT | --emu SCENARIO | --dump FILE | --example) [--cr3 X]');
try {
  const regs = await session.regs();
  // The upper half starts where bit (vaBits - 1) and all bits above it are set; 32-bit and PAE
  // kernels conventionally take the top 2 GiB.
  const from = regs.vaBits === 32 ? 0x80000000n : ((1n << 64n) - (1n << BigInt(regs.vaBits - 1)));
  console.log(`kernel half of CR3 ${regs.cr3.value} (${regs.mode} paging), from 0x${from.toString(16)}:`);
  let count = 0;
  let bytes = 0n;
  for await (const r of session.map({ from })) {
    const end = BigInt(r.va) + BigInt(r.size) - 1n;
    console.log(`  ${r.va.padStart(18)}-0x${end.toString(16).padStart(16, '0')}  ${human(r.size).padStart(5)}  ${rights(r)}${r.global ? ' global' : ''}  ${human(r.pageSize)} pages -> ${r.pa}`);
    count++;
    bytes += BigInt(r.size);
  }
  console.log(`${count} ranges, ${human(bytes)} mapped`);
} finally {
  await session.close();
}
