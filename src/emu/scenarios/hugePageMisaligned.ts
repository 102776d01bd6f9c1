/**
 * `huge-page-misaligned`: a 2 MiB page whose physical address is not 2 MiB-aligned.
 */
import { dword, mem } from '../../asm/index.js';
import { rdi, rdx, rsi } from '../../asm/registers.js';
import { announceSwitch, buildKernel } from './kernel/kernel.js';
import { PTE } from './layout.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** Where the kernel maps the framebuffer. */
const FRAMEBUFFER_VA = 0xffffc00000000000n;
/** The framebuffer's physical address: 64 KiB-aligned, not 2 MiB-aligned. */
const FRAMEBUFFER_PA = 0xfd010000n;

/** The framebuffer mapped with one 2 MiB page at an address with bits 20:16 set. */
export const hugePageMisaligned: Scenario = {
  name: 'huge-page-misaligned',
  title: 'a 2 MiB page whose low address bits are not zero: reserved bits, #PF with RSVD',
  description:
    'The kernel maps the framebuffer the loader reported (physical 0xfd010000) with a single 2 MiB ' +
    'page at 0xffffc00000000000. A 2 MiB PDE keeps only address bits 51:21; bit 12 is PAT and bits ' +
    '20:13 are reserved, and 0xfd010000 has bit 16 set. Everything else works; the first write to the ' +
    'framebuffer faults with #PF error code 0xb (present, write, RSVD: reserved bits are only checked ' +
    'in present entries, so P is 1), CR2 = 0xffffc00000000000. The kernel\'s #PF handler reports it and ' +
    'halts. QEMU 7.2 reports the same fault as 0xa, without P. `pagewalk walk` names the PD entry and ' +
    'its reserved bits (0x10000); `lint` flags the misaligned huge page.',
  outcome: {
    kind: 'fault',
    first: { vector: 14, errorCode: 0xb, cr2: FRAMEBUFFER_VA, rip: 0xffffffff80000104n },
  },
  build: () =>
    limineHandover({
      kernel: buildKernel({
        name: 'huge-page-misaligned',
        moreMappings: (a) => a.mov(rdi, FRAMEBUFFER_VA).mov(rsi, FRAMEBUFFER_PA).mov(rdx, PTE.P | PTE.RW | PTE.PS | PTE.NX).call('map_page'),
        afterSwitch: (a) =>
          announceSwitch(a)
            .lea(rsi, mem('msg_fb'))
            .call('puts')
            .mov(rdi, FRAMEBUFFER_VA)
            .label('framebuffer_write')
            .mov(dword(rdi), 0x00ffffff)
            .lea(rsi, mem('msg_ok'))
            .call('puts')
            .jmp('halt'),
        rodata: (a) => a.label('msg_fb').db('kernel: clearing the framebuffer\n', 0),
      }),
    }),
};
