/**
 * The few instructions a test kernel uses to say it is alive: COM1 set up without interrupts at
 * 115200 baud, 8N1, FIFOs on, then a string written a byte at a time, each after the transmitter
 * is ready. The same code in 32- and 64-bit mode (only the string pointer's width differs).
 */
import { distance, mem, type Assembler } from '../asm/index.js';
import { al, dx, ecx, esi, rsi } from '../asm/registers.js';

/** Emits the set-up of the 16550 at `port`: no interrupts, 115200 baud (divisor 1), 8N1, FIFOs on, DTR and RTS. Clobbers al, dx. */
export function emitSerialSetup(a: Assembler, port: number): void {
  const outb = (p: number, value: number) => a.mov(dx, p).mov(al, value).out(dx, al);
  outb(port + 1, 0x00);
  outb(port + 3, 0x80);
  outb(port + 0, 0x01);
  outb(port + 1, 0x00);
  outb(port + 3, 0x03);
  outb(port + 2, 0xc7);
  outb(port + 4, 0x03);
}

/**
 * Emits the set-up of the 16550 at `port` and the write of the bytes between the labels `text` and
 * `textEnd` (which must not be empty). Clobbers eax, ecx, edx and esi (rsi in 64-bit code).
 */
export function emitSerialMarker(a: Assembler, bits: 32 | 64, port: number, text: string, textEnd: string): void {
  emitSerialSetup(a, port);
  a.lea(bits === 64 ? rsi : esi, mem(text))
    .mov(ecx, distance(text, textEnd))
    .label(`${text}_next`)
    .mov(dx, port + 5)
    .label(`${text}_wait`)
    .in(al, dx)
    .test(al, 0x20) // transmitter holding register empty
    .jz(`${text}_wait`)
    .mov(dx, port)
    .lodsb()
    .out(dx, al)
    .dec(ecx)
    .jnz(`${text}_next`);
}
