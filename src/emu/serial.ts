/**
 * A 16550 UART at COM1 (I/O ports 0x3f8-0x3ff), enough for a kernel's serial console: bytes
 * written to THR are collected (and handed out line by line), LSR always says the transmitter is
 * empty, the divisor latch and the other registers hold what was written, and no input arrives.
 */

/** COM1's base port. */
export const COM1 = 0x3f8;

/** Line status: transmitter holding register empty (THRE) and transmitter empty (TEMT). */
const LSR_IDLE = 0x60;

/** The UART. */
export class Uart16550 {
  private readonly out: number[] = [];
  private line: number[] = [];
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private dll = 0;
  private dlm = 0;

  /** `onLine` is called with each complete output line (without its "\n" and a "\r" before it). */
  constructor(
    private readonly onLine: (line: string) => void = () => {},
    readonly base = COM1,
  ) {}

  /** True when `port` belongs to this UART. */
  claims(port: number): boolean {
    return port >= this.base && port < this.base + 8;
  }

  /** A guest read of register `port` (one byte). */
  read(port: number): number {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (port - this.base) {
      case 0:
        return dlab ? this.dll : 0; // RBR: no input ever arrives
      case 1:
        return dlab ? this.dlm : this.ier;
      case 2:
        return 0x01; // IIR: no interrupt pending
      case 3:
        return this.lcr;
      case 4:
        return this.mcr;
      case 5:
        return LSR_IDLE;
      case 6:
        return 0xb0; // MSR: DCD, DSR, CTS
      default:
        return this.scr;
    }
  }

  /** A guest write of `value` (one byte) to register `port`. */
  write(port: number, value: number): void {
    const v = value & 0xff;
    const dlab = (this.lcr & 0x80) !== 0;
    switch (port - this.base) {
      case 0:
        if (dlab) this.dll = v;
        else this.transmit(v);
        return;
      case 1:
        if (dlab) this.dlm = v;
        else this.ier = v & 0x0f;
        return;
      case 3:
        this.lcr = v;
        return;
      case 4:
        this.mcr = v;
        return;
      case 7:
        this.scr = v;
        return;
      default:
        return; // FCR, LSR and MSR writes change nothing observable here
    }
  }

  private transmit(byte: number): void {
    this.out.push(byte);
    if (byte === 0x0a) {
      const bytes = this.line[this.line.length - 1] === 0x0d ? this.line.slice(0, -1) : this.line;
      this.line = [];
      this.onLine(Buffer.from(bytes).toString('latin1'));
    } else {
      this.line.push(byte);
    }
  }

  /** Every byte transmitted so far. */
  output(): Uint8Array {
    return Uint8Array.from(this.out);
  }

  /** The output as text (Latin-1, so every byte maps to one character). */
  text(): string {
    return Buffer.from(this.out).toString('latin1');
  }
}

/** The machine's I/O port space: the UART and nothing else (other ports read as all ones, writes are dropped). */
export class PortBus {
  constructor(readonly uart: Uart16550) {}

  /** IN of `size` bytes (1, 2 or 4) from `port`. */
  read(port: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const p = (port + i) & 0xffff;
      v |= (this.uart.claims(p) ? this.uart.read(p) : 0xff) << (8 * i);
    }
    return v >>> 0;
  }

  /** OUT of `size` bytes of `value` to `port`. */
  write(port: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) {
      const p = (port + i) & 0xffff;
      if (this.uart.claims(p)) this.uart.write(p, (value >>> (8 * i)) & 0xff);
    }
  }
}
