/**
 * `idt-unmapped`: the IDT's section is left out of the kernel's tables.
 */
import { mem } from '../../asm/index.js';
import { rsi } from '../../asm/registers.js';
import { announceSwitch, buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** The IDT in a section the kernel does not map; the first exception after the switch cannot be delivered. */
export const idtUnmapped: Scenario = {
  name: 'idt-unmapped',
  title: 'the IDT lives where the new tables do not map: the first exception triple-faults',
  description:
    'The IDT sits in its own page-aligned section, `.idt`, which the kernel\'s list of sections to ' +
    "map leaves out (the loader's tables map it, so LIDT and everything before the switch work). " +
    'After `mov cr3` the kernel keeps running and printing, then tests its IDT with `int3`. Delivering ' +
    "the breakpoint reads gate 3 from the IDT: #PF error code 0x0 (not present, supervisor read; an " +
    'implicit access by the CPU, not by the instruction), CR2 = the gate\'s address. Delivering that ' +
    '#PF reads gate 14 and faults again, so #DF, whose gate 8 is not mapped either: triple fault. ' +
    'Any exception would end the same way; QEMU\'s log shows v=03, then the #PF on the IDT. `pagewalk ' +
    'check` before the `mov cr3` lists every handler as unreachable.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 3, errorCode: null, cr2: null, rip: 0xffffffff800000fan },
  },
  build: () =>
    limineHandover({
      kernel: buildKernel({
        name: 'idt-unmapped',
        mapSections: (label) => label !== 'sec_idt',
        afterSwitch: (a) => announceSwitch(a).lea(rsi, mem('msg_int3')).call('puts').label('int3_test').int3().jmp('halt'),
        rodata: (a) => a.label('msg_int3').db('kernel: testing the IDT with int3\n', 0),
      }),
    }),
};
