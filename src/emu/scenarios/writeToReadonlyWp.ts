/**
 * `write-to-readonly-wp`: with CR0.WP set the kernel writes to its own .rodata.
 */
import { dword, mem } from '../../asm/index.js';
import { rax, rsi } from '../../asm/registers.js';
import { announceSwitch, buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** A supervisor write to a read-only page, which faults because CR0.WP is set. */
export const writeToReadonlyWp: Scenario = {
  name: 'write-to-readonly-wp',
  title: 'CR0.WP=1 and the kernel writes to its read-only .rodata: #PF 0x3',
  description:
    'The kernel maps .rodata read-only, as it should, and the loader handed over with CR0.WP set, ' +
    'so the supervisor is held to read-only pages too. After the switch the kernel "patches" a ' +
    'constant (a version number declared const and cast away) and faults: #PF error code 0x3, ' +
    'CR2 = the constant\'s address. 0x3 is P=1 and W=1: the page is present and the write is what ' +
    'was refused, which people misread as "not present". The #PF handler reports it and halts. ' +
    'Without CR0.WP the write would succeed silently. `pagewalk walk --access write` shows R/W clear ' +
    'in the PTE and names WP as the reason.',
  outcome: {
    kind: 'fault',
    first: { vector: 14, errorCode: 0x3, cr2: 0xffffffff80001110n, rip: 0xffffffff80000101n },
  },
  build: () =>
    limineHandover({
      kernel: buildKernel({
        name: 'write-to-readonly-wp',
        afterSwitch: (a) =>
          announceSwitch(a)
            .lea(rsi, mem('msg_patch'))
            .call('puts')
            .lea(rax, mem('kernel_version'))
            .label('rodata_write')
            .mov(dword(rax), 2)
            .lea(rsi, mem('msg_ok'))
            .call('puts')
            .jmp('halt'),
        rodata: (a) => a.align(8).label('kernel_version').dd(1).label('msg_patch').db('kernel: patching kernel_version\n', 0),
      }),
    }),
};
