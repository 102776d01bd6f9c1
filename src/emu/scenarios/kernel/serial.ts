/**
 * The serial console routines every scenario's code links in: COM1 set-up, one character (waiting
 * for the transmitter like a real driver), a NUL-terminated string, and a number in hex.
 * Register use is written on each routine; none touches the stack beyond its own calls.
 */
import { byte, type Assembler } from '../../../asm/index.js';
import { al, cl, dx, eax, ecx, edi, r8, rax, rsi } from '../../../asm/registers.js';
import { emitSerialSetup } from '../../../image/serialMarker.js';
import { LAYOUT } from '../layout.js';

const COM1 = LAYOUT.serialPort;

/**
 * Emits `serial_init` (clobbers rax, rdx), `putc` (character in dil; clobbers rax, rdx), `puts`
 * (string at rsi; clobbers rax, rdx, rdi, rsi) and `put_hex` (rax as 0x..., no leading zeros;
 * clobbers rax, rcx, rdx, rdi, r8).
 */
export function emitSerial(a: Assembler): void {
  a.label('serial_init');
  emitSerialSetup(a, COM1);
  a.ret();

  a.label('putc')
    .mov(dx, COM1 + 5)
    .label('putc_wait')
    .in(al, dx)
    .test(al, 0x20) // transmitter holding register empty
    .jz('putc_wait')
    .mov(dx, COM1)
    .mov(eax, edi)
    .out(dx, al)
    .ret();

  a.label('puts')
    .movzx(edi, byte(rsi))
    .test(edi, edi)
    .jz('puts_done')
    .call('putc')
    .add(rsi, 1)
    .jmp('puts')
    .label('puts_done')
    .ret();

  // "0x", then the nibbles from the highest non-zero one down (at least one digit).
  a.label('put_hex')
    .mov(r8, rax)
    .mov(edi, 0x30)
    .call('putc')
    .mov(edi, 0x78)
    .call('putc')
    .mov(ecx, 60)
    .label('put_hex_skip')
    .mov(rax, r8)
    .shr(rax, cl)
    .test(al, 0x0f)
    .jnz('put_hex_digit')
    .sub(ecx, 4)
    .jnz('put_hex_skip')
    .label('put_hex_digit')
    .mov(rax, r8)
    .shr(rax, cl)
    .and(eax, 0x0f)
    .cmp(eax, 10)
    .jb('put_hex_decimal')
    .add(eax, 0x61 - 0x30 - 10)
    .label('put_hex_decimal')
    .add(eax, 0x30)
    .mov(edi, eax)
    .call('putc')
    .sub(ecx, 4)
    .jns('put_hex_digit')
    .ret();
}
