/**
 * `nx-without-nxe`: NX bits in the kernel's tables while EFER.NXE is off.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** The loader leaves EFER.NXE off; the kernel marks its data, stack and IDT no-execute anyway. */
export const nxWithoutNxe: Scenario = {
  name: 'nx-without-nxe',
  title: "NX bits in the kernel's tables while EFER.NXE is off: bit 63 is reserved",
  description:
    'The loader (like many hand-written long-mode entries) leaves EFER.NXE clear, and the kernel builds ' +
    'its tables the usual way: data, stack and IDT pages no-execute, bit 63 set. Without NXE, bit 63 ' +
    'is a reserved bit: any walk through such an entry faults with RSVD=1, whatever the access. The ' +
    '`mov cr3` and the next fetches work (code pages carry no NX); the first push onto the kernel stack ' +
    'faults: #PF error code 0xb (present, write, reserved bit), CR2 = RSP - 8. Delivering it pushes onto ' +
    "the same stack: #DF, then a triple fault. QEMU's TCG reports the #PF as 0xa (RSVD without P). " +
    '`pagewalk check` names bit 63 with EFER.NXE=0 in those entries before the switch; the fix is ' +
    'setting EFER.NXE (bit 11 of MSR 0xc0000080) before loading tables that use NX.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0xb, cr2: 0xffffffff80005ff0n, rip: 0xffffffff800000e9n },
  },
  build: () => limineHandover({ nxe: false, kernel: buildKernel({ name: 'nx-without-nxe' }) }),
};
