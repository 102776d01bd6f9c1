/**
 * The emulator's one error type for its host-side API (debugger access, register names, machine
 * control): a stable `code` and a one-line message. Guest exceptions are not errors: they are
 * {@link CpuFault}s the CPU delivers through the IDT.
 */

/** Stable codes of emulator errors. */
export type EmuErrorCode =
  /** A debugger access to a virtual address that does not translate (not present, reserved bit, non-canonical). */
  | 'E_UNMAPPED'
  /** An unknown register name, or a value that does not fit the register. */
  | 'E_REGISTER'
  /** The machine is shut down (triple fault with the shutdown action): only a reset brings it back. */
  | 'E_SHUTDOWN'
  /** A start state or option the emulator cannot honour (for example a non-64-bit code segment). */
  | 'E_CONFIG'
  /** A breakpoint or watchpoint request that cannot be honoured (length 0, not found). */
  | 'E_BREAKPOINT'
  /** The guest reached a state the emulator does not model (for example compatibility-mode code). */
  | 'E_UNSUPPORTED';

/** An error from the emulator's host-side API; `code` is stable, the message is one line. */
export class EmuError extends Error {
  constructor(
    readonly code: EmuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EmuError';
  }
}
