/**
 * Programs the asm tests assemble: one per mode, each using every kind of operand the assembler
 * offers in that mode (their decode-back listings are the goldens of listing.test.ts).
 */
import { Assembler, byte, distance, dword, mem, qword, ref, word } from '../../src/asm/index.js';
import {
  al,
  ax,
  bl,
  cl,
  cr0,
  cr3,
  cr4,
  dx,
  ds,
  eax,
  ebp,
  ecx,
  esp,
  r10w,
  r11b,
  r12,
  r15,
  r8,
  r9d,
  rax,
  rbp,
  rbx,
  rcx,
  rdi,
  rdx,
  rsi,
  rsp,
  si,
  sp,
  ss,
} from '../../src/asm/registers.js';

/** 64-bit code: moves, stack, arithmetic and logic, shifts, branches, system instructions, data. */
export function program64(): Assembler {
  return new Assembler(64)
    .label('top')
    .mov(rax, rbx)
    .mov(r8, qword({ base: rbx, index: rcx, scale: 8, disp: 0x10 }))
    .mov(qword(rsp, 8), r15)
    .mov(eax, dword(rbp))
    .mov(rcx, -1)
    .mov(rdx, 0xffffffff80100000n)
    .mov(rsi, 0x123456789an)
    .mov(qword(rdi), 0x7fffffff)
    .mov(byte(rdi, 3), 0xff)
    .mov(word(rdi), 0xbeef)
    .mov(cr3, rax)
    .mov(rax, cr3)
    .mov(cr0, rbx)
    .mov(r12, cr4)
    .mov(ds, ax)
    .mov(ax, ss)
    .mov(rax, qword('slot'))
    .mov(qword('slot'), rbx)
    .lea(rdi, mem('slot', 8))
    .mov(rcx, ref('slot'))
    .movzx(eax, byte(rsi))
    .movzx(r9d, r10w)
    .push(rbp)
    .push(r12)
    .push(0x10)
    .push(0x12345)
    .push(qword(rsp, 0x20))
    .pop(rbx)
    .pop(qword(rax))
    .add(rax, rbx)
    .sub(rcx, qword(rdx))
    .and(qword(rdi), -16)
    .or(rax, 0x7fffffff)
    .xor(eax, eax)
    .cmp(byte(rsi), 0x20)
    .adc(rdx, 0)
    .sbb(rdx, r8)
    .add(r11b, 1)
    .test(rax, rax)
    .test(dword(rbx), 0x100)
    .inc(rcx)
    .dec(qword('slot'))
    .neg(rdx)
    .not(r10w)
    .shl(rax, 1)
    .shr(rdx, 12)
    .sar(ecx, cl)
    .rol(bl, 4)
    .ror(qword(rdi), 3)
    .label('back')
    .cmp(rcx, 10)
    .jb('back')
    .jne('fwd')
    .jmp('back')
    .call('fwd')
    .jmp(rax)
    .call(qword(rbx, 8))
    .ret()
    .label('fwd')
    .rdmsr()
    .wrmsr()
    .cpuid()
    .lgdt(mem(rax))
    .lidt(mem('slot'))
    .ltr(ax)
    .lldt(word(rbx))
    .invlpg(mem(rdi))
    .int3()
    .int(0x80)
    .hlt()
    .cli()
    .sti()
    .iretq()
    .retf()
    .out(dx, al)
    .out(0x80, al)
    .in(eax, dx)
    .in(al, 0x60)
    .repStosq()
    .repStosb()
    .repMovsb()
    .stosb()
    .lodsb()
    .pause()
    .nop()
    .ud2()
    .cld()
    .align(8)
    .label('slot')
    .dq(0x110000, ref('top'))
    .dd(distance('top', 'slot'))
    .dw(0xaa55)
    .db(1, 2, 'ok', new Uint8Array([0xfe]));
}

/** 32-bit code: a stack frame, a call, a far jump, lgdt through an absolute address, a near jcc over data. */
export function program32(): Assembler {
  return new Assembler(32)
    .label('entry')
    .push(ebp)
    .mov(ebp, esp)
    .mov(eax, dword(ebp, 8))
    .call('sub')
    .pop(ebp)
    .mov(eax, cr0)
    .or(eax, 1)
    .mov(cr0, eax)
    .jmpFar(0x08, 'pm')
    .label('pm')
    .lgdt(mem('gdtr'))
    .mov(dword('gdtr', 2), eax)
    .out(0xf8, al)
    .in(al, dx)
    .repStosd()
    .iretd()
    .label('sub')
    .cmp(eax, 0)
    .je('far')
    .zero(200)
    .label('far')
    .ret()
    .label('gdtr')
    .dw(0x17)
    .dd(ref('entry'));
}

/** 16-bit code: a boot sector that prints, loads a GDT and switches to 32-bit code. */
export function program16(): Assembler {
  return new Assembler(16)
    .label('start')
    .cli()
    .xor(ax, ax)
    .mov(ds, ax)
    .mov(ss, ax)
    .mov(sp, 0x7c00)
    .mov(si, ref('msg'))
    .label('print')
    .lodsb()
    .test(al, al)
    .jz('done')
    .mov(ax, 0x0e00)
    .int(0x10)
    .jmp('print')
    .label('done')
    .lgdt(mem('gdtr'))
    .mov(eax, cr0)
    .or(al, 1)
    .mov(cr0, eax)
    .jmpFar(0x08, 'pm32')
    .bits(32)
    .label('pm32')
    .mov(eax, 0x10)
    .mov(ds, eax)
    .hlt()
    .label('msg')
    .db('hi', 0)
    .label('gdtr')
    .dw(0x17)
    .dd(ref('start'));
}
