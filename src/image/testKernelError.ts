/**
 * The errors of the test kernels' builders (testKernel.ts, legacyKernel.ts), and how a test hands
 * them an address space to build.
 */
import type { PageTables } from './pageTables.js';

/** Builds an address space in the page tables it is given. */
export type TablesBuilder = (pt: PageTables) => void;

/** Stable codes of test kernel errors. */
export type TestKernelErrorCode =
  /** The main tables do not let the kernel run (a page missing or without the right it needs). */
  | 'E_UNMAPPED'
  /** Table frames outside 16 MiB or over the kernel, or an unknown slot space. */
  | 'E_LAYOUT';

/** An error building the test kernel; `code` is stable. */
export class TestKernelError extends Error {
  constructor(
    readonly code: TestKernelErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TestKernelError';
  }
}
