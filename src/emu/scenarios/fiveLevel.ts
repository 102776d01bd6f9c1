/**
 * `five-level`: the loader turned on 5-level paging; the kernel builds 4-level tables.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** Tables built for 4-level paging, loaded with CR4.LA57 set. */
export const fiveLevel: Scenario = {
  name: 'five-level',
  title: 'CR4.LA57 is on, and the kernel builds 4-level tables',
  description:
    'The CPU supports 5-level paging and the loader hands over with CR4.LA57 set (as Limine does ' +
    'when the CPU has it), on 5-level tables. The kernel assumes 4 levels: it builds a PML4 and loads ' +
    'it into CR3, where the CPU reads it as a PML5. The addresses themselves give no warning: ' +
    '0xffffffff80000000 and 0xffff800000000000 are canonical at both widths (bits 63:47 and 63:56 ' +
    'are all ones), but with 57 bits the top index is bits 56:48, so each level lands one table off. ' +
    'The kernel\'s text resolves PML5[511] -> its PDPT used as a PML4 -> slot 511, which is empty: ' +
    '#PF error code 0x10 (not present, fetch), CR2 = RIP = the instruction after `mov cr3`, then #DF ' +
    'and a triple fault. `pagewalk regs` shows the 5-level mode, and `walk` names PML5, PML4, ' +
    "PDPT where the kernel meant PML4, PDPT, PD.",
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x10, cr2: 0xffffffff800000d1n, rip: 0xffffffff800000d1n },
  },
  build: () => limineHandover({ mode: '5-level', features: { la57: true }, kernel: buildKernel({ name: 'five-level', levels: 4 }) }),
};
