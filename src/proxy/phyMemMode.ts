/**
 * QEMU's `Qqemu.PhyMemMode` (whether `m`/`M` take physical addresses) is one global switch, but GDB
 * and each pagewalk client must each see their own: pagewalk reads tables in physical mode while GDB
 * keeps the mode it chose. This bookkeeping says which switch to slip in before each packet: GDB's
 * packets always run under GDB's mode, a pagewalk client's under the mode it set last (or GDB's).
 * Restoring is lazy: QEMU keeps pagewalk's mode until the next packet of GDB's (or the end of the
 * connection), which nobody else can observe, since QEMU serves one gdbstub client at a time.
 */

/** The PhyMemMode state of one QEMU connection. */
export class PhyMemModes {
  private supportedValue: boolean | null = null;
  private gdbMode: boolean | null = null;
  private current: boolean | null = null;

  /** Whether the stub has PhyMemMode at all; null until the first query is answered. */
  get supported(): boolean | null {
    return this.supportedValue;
  }

  /** GDB's mode, when known. */
  get gdb(): boolean | null {
    return this.gdbMode;
  }

  /** The mode QEMU holds now, when known. */
  get now(): boolean | null {
    return this.current;
  }

  /** True when packets of pagewalk's can be given their own mode (the stub has PhyMemMode and both GDB's and QEMU's modes are known). */
  get ready(): boolean {
    return this.supportedValue === false || (this.gdbMode !== null && this.current !== null);
  }

  /**
   * Records the answer to a `qqemu.PhyMemMode` query sent while QEMU held GDB's mode (by the proxy
   * or by GDB): `0`/`1` set both modes; an empty answer means the stub has no PhyMemMode.
   */
  queried(answer: string): void {
    if (answer === '0' || answer === '1') {
      this.supportedValue = true;
      this.gdbMode = this.current = answer === '1';
    } else if (answer === '') {
      this.supportedValue = false;
    }
  }

  /**
   * Records GDB's own `Qqemu.PhyMemMode:...` (`value` null when malformed) and QEMU's answer: `OK`
   * to a well-formed value sets both modes, an empty answer means the stub has no PhyMemMode, and
   * anything else leaves the modes unknown until the next query.
   */
  gdbSet(value: boolean | null, answer: string): void {
    if (answer === 'OK' && value !== null) {
      this.supportedValue = true;
      this.gdbMode = this.current = value;
    } else if (answer === '') {
      this.supportedValue = false;
    } else {
      this.gdbMode = this.current = null;
    }
  }

  /** True when the modes must be asked again before pagewalk's packets can run (after a change of GDB's that QEMU did not simply accept). */
  get unknown(): boolean {
    return this.supportedValue === true && (this.gdbMode === null || this.current === null);
  }

  /**
   * The `Qqemu.PhyMemMode:N` to send before a packet that must run under `want` (null: GDB's mode),
   * or null when QEMU already holds it (or the mode is unknown, or the stub has none). Assumes the
   * switch is sent: QEMU holds `want` from then on.
   */
  switchFor(want: boolean | null): string | null {
    if (this.supportedValue !== true) return null;
    const target = want ?? this.gdbMode;
    if (target === null || this.current === null || target === this.current) return null;
    this.current = target;
    return `Qqemu.PhyMemMode:${target ? 1 : 0}`;
  }

  /** Records a switch QEMU refused: its mode is unknown until the next query. */
  switchFailed(): void {
    this.current = null;
  }
}
