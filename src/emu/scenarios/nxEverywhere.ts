/**
 * `nx-everywhere`: NX in the flags of every table entry the vmm creates.
 */
import { buildKernel } from './kernel/kernel.js';
import { TABLE_FLAGS } from './kernel/paging.js';
import { PTE } from './layout.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** NX on every PML4 entry (and every other non-leaf entry). */
export const nxEverywhere: Scenario = {
  name: 'nx-everywhere',
  title: 'NX set on every PML4 entry: nothing can execute after the switch',
  description:
    "The kernel's table flags include NX (`PAGE_TABLE = P | RW | US | NX`, meant as a safe default), " +
    'so every PML4, PDPT and PD entry it creates has XD set. XD is ORed over all levels, so no address ' +
    'is executable, however the leaves are marked. The instruction after `mov cr3` faults with #PF ' +
    'error code 0x11 (present, instruction fetch), CR2 = RIP. The IDT and the stack are fine, so the ' +
    "#PF is delivered; fetching the handler's first instruction faults again, and again, each time " +
    'pushing a frame, until the stack reaches the guard page below it: then delivery faults, #DF, and ' +
    'a triple fault. `pagewalk walk --access exec` shows XD set at the PML4 level; the leaf alone ' +
    "(all QEMU's `info tlb` shows) looks executable.",
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x11, cr2: 0xffffffff800000e2n, rip: 0xffffffff800000e2n },
  },
  build: () => limineHandover({ kernel: buildKernel({ name: 'nx-everywhere', tableFlags: TABLE_FLAGS | PTE.NX }) }),
};
