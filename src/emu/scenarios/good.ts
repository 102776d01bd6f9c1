/**
 * `good`: the control. The kernel builds correct tables (its sections with their rights, the
 * direct map), loads CR3 and keeps running.
 */
import { buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** The kernel that gets it right. */
export const good: Scenario = {
  name: 'good',
  title: 'correct tables: the kernel switches CR3 and keeps running',
  description:
    'The control case. The loader hands over in long mode on its own tables (the direct map at ' +
    '0xffff800000000000, the kernel at 0xffffffff80000000); the kernel switches to its own stack, ' +
    'loads its GDT and IDT, builds its own PML4 (text read-only and executable, rodata read-only, ' +
    'data and stack writable and NX, the direct map in 2 MiB pages), loads CR3 and prints "ok". ' +
    'Every pagewalk check passes here: `check` before the `mov cr3` says safe, and `diff` against the ' +
    "loader's CR3 loses nothing: the kernel maps the same sections with the same rights, and only " +
    'its direct map differs, being NX.',
  outcome: { kind: 'runs' },
  build: () => limineHandover({ kernel: buildKernel({ name: 'good' }) }),
};
