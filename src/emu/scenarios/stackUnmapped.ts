/**
 * `stack-unmapped`: the kernel keeps the loader's stack, which its tables do not map.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** The boot stack, in the loader's memory, left out of the new tables. */
export const stackUnmapped: Scenario = {
  name: 'stack-unmapped',
  title: "the loader's boot stack is not mapped in the kernel's tables",
  description:
    "The kernel never switches stacks: it runs on the boot stack the loader gave it, at the top of " +
    "the loader's memory (physical 0x3f0000-0x400000, reached through the direct map). Its new tables " +
    'map the direct map only for the usable memory of the memory map (from 0x400000), since loader ' +
    'memory is "reclaimable". The `mov cr3` and the next instruction work; the first push, the ' +
    '`call` that prints the next progress line, faults: #PF error code 0x2 (not present, write), CR2 ' +
    '= RSP - 8 = 0xffff8000003ffff0 (one slot below the return address of `call kmain`). Delivering the #PF pushes onto the same stack and faults again, ' +
    'so the CPU raises #DF, whose delivery faults too: triple fault. `pagewalk check` reports the ' +
    'stack problem before the `mov cr3`, and the exception chain that follows.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x2, cr2: 0xffff8000003ffff0n, rip: 0xffffffff800000e2n },
  },
  build: () => limineHandover({ kernel: buildKernel({ name: 'stack-unmapped', ownStack: false, directMap: 'usable' }) }),
};
