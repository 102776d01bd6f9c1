/**
 * `unshifted-bitfield`: a full physical address stored in a bitfield that holds addr >> 12.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** `pte.addr = phys` where the field wants `phys >> 12`. */
export const unshiftedBitfield: Scenario = {
  name: 'unshifted-bitfield',
  title: 'a full physical address stored into a bitfield that expects addr >> 12',
  description:
    "The kernel describes an entry as a C struct with `uint64_t addr : 40` at bit 12 and writes " +
    '`e.addr = phys` where it should write `phys >> 12`; it reads the field back the same way, so its ' +
    'own walks agree with themselves and nothing fails while it builds the tables. The CPU reads ' +
    'addr << 12: the PML4 entry for the kernel points at 0x401000000 (16 GiB), far past the 32 MiB of ' +
    'RAM, where everything reads as zeros. After `mov cr3` the fetch of the next instruction finds no ' +
    'PDPT entry: #PF error code 0x10 (not present, fetch), CR2 = RIP; the IDT cannot be reached ' +
    'either, so #DF follows and then a triple fault. `pagewalk check`/`lint` flag every table pointer ' +
    'as past RAM and as a pointer shifted left by 12.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x10, cr2: 0xffffffff800000e2n, rip: 0xffffffff800000e2n },
  },
  build: () => limineHandover({ kernel: buildKernel({ name: 'unshifted-bitfield', paging: { format: 'bitfield' } }) }),
};
