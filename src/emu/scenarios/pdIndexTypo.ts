/**
 * `pd-index-typo`: the PD index computed with the PDPT's shift.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** The PDPT index macro used at the PD level. */
export const pdIndexTypo: Scenario = {
  name: 'pd-index-typo',
  title: 'the PDPT index macro used at the PD level: the kernel is mapped in the wrong PD slot',
  description:
    "The kernel's vmm computes each level's index from a table of shifts, and the PD entry holds 30 " +
    '(PDPT_INDEX) instead of 21: every 4 KiB page of the kernel lands in PD slot 510 ((va >> 30) & 511) ' +
    'instead of slot 0, and the direct map piles all its 2 MiB pages into one slot. The tables look ' +
    'busy and plausible, but the walk for the very next instruction after `mov cr3` stops at an empty ' +
    'PD entry: #PF with error code 0x10 (not present, instruction fetch; I/D is reported because ' +
    'EFER.NXE is on, it would be 0x0 without NXE), CR2 = RIP = the instruction after the `mov cr3`. ' +
    'The IDT is unreachable for the same reason, so #PF delivery faults, #DF delivery faults, and the ' +
    'CPU triple-faults. `pagewalk check` before the `mov cr3` names the PD level and the empty slot; ' +
    '`walk` shows the index it used, and `map` shows the kernel at 0xffffffffbfc00000.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x10, cr2: 0xffffffff800000e2n, rip: 0xffffffff800000e2n },
  },
  build: () => limineHandover({ kernel: buildKernel({ name: 'pd-index-typo', paging: { shifts: [12, 30, 30, 39, 48] } }) }),
};
