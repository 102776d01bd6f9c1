/**
 * The proxy's log of both directions of both connections (and of pagewalk's clients): what GDB
 * sent, what went to QEMU on whose behalf, what QEMU answered and to whom it was handed. Tests hold
 * GDB's own view against it; `pagewalk proxy --log FILE` writes it as JSON lines.
 */

/** Who sends or receives: GDB, QEMU, the proxy itself, or pagewalk client number N (`pagewalk#N`). */
export type Party = 'gdb' | 'qemu' | 'proxy' | `pagewalk#${number}`;

/** One packet or interrupt that crossed a connection of the proxy. */
export interface TrafficEntry {
  /** Position in the log, from 1. */
  seq: number;
  /** Milliseconds since the proxy started. */
  ms: number;
  from: Party;
  to: Party;
  kind: 'packet' | 'interrupt';
  /** The payload, unescaped, as latin1 text ('' for an interrupt). */
  payload: string;
  /**
   * For packets to QEMU: on whose behalf they went. For packets from QEMU: whose request they
   * answer (or belong to, for `O` output), or 'nobody' for a stop or output nobody asked for.
   */
  for?: Party | 'nobody';
  /** What else happened: 'resent' (QEMU lost it), 'dropped' (its owner is gone), 'progress' (output before the answer). */
  note?: 'resent' | 'dropped' | 'progress';
}

/** The entry as one JSON line (without the line end). */
export function trafficLine(e: TrafficEntry): string {
  return JSON.stringify(e);
}
