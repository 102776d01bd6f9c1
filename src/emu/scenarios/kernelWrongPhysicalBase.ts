/**
 * `kernel-wrong-physical-base`: the kernel maps itself from its link-time physical address.
 */
import { buildKernel } from './kernel/kernel.js';
import { LAYOUT } from './layout.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** Pages of zeroed memory at the wrong base (the kernel image's size). */
const ZEROED = 0x10000;

/** The kernel image mapped from 0x100000 where the loader put it at 0x200000. */
export const kernelWrongPhysicalBase: Scenario = {
  name: 'kernel-wrong-physical-base',
  title: 'the kernel mapped from the wrong physical base (0x100000 instead of 0x200000)',
  description:
    "The kernel maps its own image from the physical address in its linker script's AT() (0x100000) " +
    'instead of the base the loader reports in the boot information (0x200000). The new tables are ' +
    'perfectly formed and present, so nothing faults at the walk: after `mov cr3` the CPU fetches the ' +
    'next instruction from 0x100000 + offset, memory the loader zeroed. 00 00 decodes as ' +
    '`add [rax], al`, and RAX still holds the new CR3 (0x400000), which is not mapped: #PF error code ' +
    '0x2 (not present, write), CR2 = 0x400000, RIP = the instruction after the `mov cr3`. A write ' +
    'fault to the address in RAX at an instruction that should not write is the tell-tale of ' +
    'executing zeros (QEMU 7.2 runs the add as a load, then a store, and reports the same fault as ' +
    '0x0, a read; hardware checks the write first). The IDT read through the same wrong mapping is zeros too: gate type 0 gives ' +
    '#GP, hence #DF, whose gate is zeros as well: triple fault. `pagewalk phys2virt 0x200000` finds ' +
    "no kernel mapping, and `diff` against the loader's CR3 shows every kernel page moved by -0x100000.",
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x2, cr2: 0x400000n, rip: 0xffffffff800000e3n },
  },
  build: () =>
    limineHandover({
      kernel: buildKernel({ name: 'kernel-wrong-physical-base', physBase: LAYOUT.wrongKernelPhys }),
      memory: (mem) => mem.write(LAYOUT.wrongKernelPhys, new Uint8Array(ZEROED)),
    }),
};
