/**
 * Decode-back goldens: each program is assembled, its bytes are decoded again by iced-x86's Decoder
 * and Formatter, and the listing must read exactly as below (checked instruction by instruction
 * against the x86 encodings NASM produces for the same source).
 */
import { describe, expect, it } from 'vitest';
import { disassemble, formatLines } from '../../src/asm/index.js';
import { program16, program32, program64 } from './programs.js';

const LISTING_64 = `
top:
ffffffff80100000  4889d8                  mov rax, rbx
ffffffff80100003  4c8b44cb10              mov r8, [rbx+rcx*8+0x10]
ffffffff80100008  4c897c2408              mov [rsp+8], r15
ffffffff8010000d  8b4500                  mov eax, [rbp]
ffffffff80100010  48c7c1ffffffff          mov rcx, 0xffffffffffffffff
ffffffff80100017  48c7c200001080          mov rdx, 0xffffffff80100000
ffffffff8010001e  48be9a78563412000000    mov rsi, 0x123456789a
ffffffff80100028  48c707ffffff7f          mov qword [rdi], 0x7fffffff
ffffffff8010002f  c64703ff                mov byte [rdi+3], 0xff
ffffffff80100033  66c707efbe              mov word [rdi], 0xbeef
ffffffff80100038  0f22d8                  mov cr3, rax
ffffffff8010003b  0f20d8                  mov rax, cr3
ffffffff8010003e  0f22c3                  mov cr0, rbx
ffffffff80100041  410f20e4                mov r12, cr4
ffffffff80100045  8ed8                    mov ds, eax
ffffffff80100047  668cd0                  mov ax, ss
ffffffff8010004a  488b05cf000000          mov rax, [rel 0xffffffff80100120]
ffffffff80100051  48891dc8000000          mov [rel 0xffffffff80100120], rbx
ffffffff80100058  488d3dc9000000          lea rdi, [rel 0xffffffff80100128]
ffffffff8010005f  48b920011080ffffffff    mov rcx, 0xffffffff80100120
ffffffff80100069  0fb606                  movzx eax, byte [rsi]
ffffffff8010006c  450fb7ca                movzx r9d, r10w
ffffffff80100070  55                      push rbp
ffffffff80100071  4154                    push r12
ffffffff80100073  6a10                    push 0x10
ffffffff80100075  6845230100              push 0x12345
ffffffff8010007a  ff742420                push qword [rsp+0x20]
ffffffff8010007e  5b                      pop rbx
ffffffff8010007f  8f00                    pop qword [rax]
ffffffff80100081  4801d8                  add rax, rbx
ffffffff80100084  482b0a                  sub rcx, [rdx]
ffffffff80100087  488327f0                and qword [rdi], 0xfffffffffffffff0
ffffffff8010008b  4881c8ffffff7f          or rax, 0x7fffffff
ffffffff80100092  31c0                    xor eax, eax
ffffffff80100094  803e20                  cmp byte [rsi], 0x20
ffffffff80100097  4883d200                adc rdx, 0
ffffffff8010009b  4c19c2                  sbb rdx, r8
ffffffff8010009e  4180c301                add r11b, 1
ffffffff801000a2  4885c0                  test rax, rax
ffffffff801000a5  f70300010000            test dword [rbx], 0x100
ffffffff801000ab  48ffc1                  inc rcx
ffffffff801000ae  48ff0d6b000000          dec qword [rel 0xffffffff80100120]
ffffffff801000b5  48f7da                  neg rdx
ffffffff801000b8  6641f7d2                not r10w
ffffffff801000bc  48d1e0                  shl rax, 1
ffffffff801000bf  48c1ea0c                shr rdx, 0xc
ffffffff801000c3  d3f9                    sar ecx, cl
ffffffff801000c5  c0c304                  rol bl, 4
ffffffff801000c8  48c10f03                ror qword [rdi], 3
back:
ffffffff801000cc  4883f90a                cmp rcx, 0xa
ffffffff801000d0  72fa                    jb 0xffffffff801000cc
ffffffff801000d2  750d                    jne 0xffffffff801000e1
ffffffff801000d4  ebf6                    jmp 0xffffffff801000cc
ffffffff801000d6  e806000000              call 0xffffffff801000e1
ffffffff801000db  ffe0                    jmp rax
ffffffff801000dd  ff5308                  call qword [rbx+8]
ffffffff801000e0  c3                      ret
fwd:
ffffffff801000e1  0f32                    rdmsr
ffffffff801000e3  0f30                    wrmsr
ffffffff801000e5  0fa2                    cpuid
ffffffff801000e7  0f0110                  lgdt [rax]
ffffffff801000ea  0f011d2f000000          lidt [rel 0xffffffff80100120]
ffffffff801000f1  0f00d8                  ltr ax
ffffffff801000f4  0f0013                  lldt [rbx]
ffffffff801000f7  0f013f                  invlpg [rdi]
ffffffff801000fa  cc                      int3
ffffffff801000fb  cd80                    int 0x80
ffffffff801000fd  f4                      hlt
ffffffff801000fe  fa                      cli
ffffffff801000ff  fb                      sti
ffffffff80100100  48cf                    iretq
ffffffff80100102  48cb                    retfq
ffffffff80100104  ee                      out dx, al
ffffffff80100105  e680                    out 0x80, al
ffffffff80100107  ed                      in eax, dx
ffffffff80100108  e460                    in al, 0x60
ffffffff8010010a  f348ab                  rep stosq
ffffffff8010010d  f3aa                    rep stosb
ffffffff8010010f  f3a4                    rep movsb
ffffffff80100111  aa                      stosb
ffffffff80100112  ac                      lodsb
ffffffff80100113  f390                    pause
ffffffff80100115  90                      nop
ffffffff80100116  0f0b                    ud2
ffffffff80100118  fc                      cld
ffffffff80100119  00000000000000          align 8
slot:
ffffffff80100120  00001100000000000000..  dq 0x110000, top
ffffffff80100130  20010000                dd slot-top
ffffffff80100134  55aa                    dw 0xaa55
ffffffff80100136  01026f6bfe              db 0x1, 0x2, "ok", <1 byte>
`;

const LISTING_32 = `
entry:
0000000000100000  55                      push ebp
0000000000100001  89e5                    mov ebp, esp
0000000000100003  8b4508                  mov eax, [ebp+8]
0000000000100006  e824000000              call 0x10002f
000000000010000b  5d                      pop ebp
000000000010000c  0f20c0                  mov eax, cr0
000000000010000f  83c801                  or eax, 1
0000000000100012  0f22c0                  mov cr0, eax
0000000000100015  ea1c0010000800          jmp 8:0x10001c
pm:
000000000010001c  0f011501011000          lgdt [0x100101]
0000000000100023  890503011000            mov [0x100103], eax
0000000000100029  e6f8                    out 0xf8, al
000000000010002b  ec                      in al, dx
000000000010002c  f3ab                    rep stosd
000000000010002e  cf                      iret
sub:
000000000010002f  83f800                  cmp eax, 0
0000000000100032  0f84c8000000            je 0x100100
0000000000100038  00000000000000000000..  zero 200
far:
0000000000100100  c3                      ret
gdtr:
0000000000100101  1700                    dw 0x17
0000000000100103  00001000                dd entry
`;

const LISTING_16 = `
start:
0000000000007c00  fa                      cli
0000000000007c01  31c0                    xor ax, ax
0000000000007c03  8ed8                    mov ds, ax
0000000000007c05  8ed0                    mov ss, ax
0000000000007c07  bc007c                  mov sp, 0x7c00
0000000000007c0a  be347c                  mov si, 0x7c34
print:
0000000000007c0d  ac                      lodsb
0000000000007c0e  84c0                    test al, al
0000000000007c10  7407                    je 0x7c19
0000000000007c12  b8000e                  mov ax, 0xe00
0000000000007c15  cd10                    int 0x10
0000000000007c17  ebf4                    jmp 0x7c0d
done:
0000000000007c19  0f0116377c              lgdt [0x7c37]
0000000000007c1e  0f20c0                  mov eax, cr0
0000000000007c21  80c801                  or al, 1
0000000000007c24  0f22c0                  mov cr0, eax
0000000000007c27  ea2c7c0800              jmp 8:0x7c2c
pm32:
0000000000007c2c  b810000000              mov eax, 0x10
0000000000007c31  8ed8                    mov ds, eax
0000000000007c33  f4                      hlt
msg:
0000000000007c34  686900                  db "hi", 0x0
gdtr:
0000000000007c37  1700                    dw 0x17
0000000000007c39  007c0000                dd start
`;

const golden = (s: string) => s.slice(1, -1);

describe('decode-back listings', () => {
  it('64-bit: every operand kind, RIP-relative labels, short and near branches, data', () => {
    expect(program64().assemble(0xffffffff80100000n).listing()).toBe(golden(LISTING_64));
  });

  it('32-bit: absolute label addresses, a far jump, a near jcc over 200 bytes of data', () => {
    expect(program32().assemble(0x100000).listing()).toBe(golden(LISTING_32));
  });

  it('16-bit: a boot sector that switches to 32-bit code half-way (bits 32)', () => {
    expect(program16().assemble(0x7c00).listing()).toBe(golden(LISTING_16));
  });

  it('the listing is the decoding of the bytes themselves', () => {
    // The 16-bit program up to `pm32` is one run of 16-bit code: decode it independently.
    const code = program16().assemble(0x7c00);
    const end = code.offset('pm32');
    const text = formatLines(disassemble(code.bytes.subarray(0, end), 16, 0x7c00));
    const fromListing = code
      .listing()
      .split('\n')
      .filter((l) => !l.endsWith(':'))
      .filter((l) => BigInt(`0x${l.slice(0, 16)}`) < 0x7c00n + BigInt(end))
      .join('\n');
    expect(text).toBe(fromListing);
    expect(text.split('\n')).toHaveLength(17);
  });

  it('assembles the same bytes at a different origin except where addresses are encoded', () => {
    const a = program32().assemble(0x100000);
    const b = program32().assemble(0x200000);
    expect(b.bytes.length).toBe(a.bytes.length);
    expect(b.address('gdtr') - a.address('gdtr')).toBe(0x100000n);
    // Relative branches are identical; absolute addresses (far jump, lgdt, the dd) moved by 0x100000.
    expect(Buffer.from(a.bytes.subarray(0, 0x15)).toString('hex')).toBe(Buffer.from(b.bytes.subarray(0, 0x15)).toString('hex'));
    expect(disassemble(b.bytes.subarray(0x15), 32, b.address('pm') - 7n, 2).map((l) => l.text)).toEqual(['jmp 8:0x20001c', 'lgdt [0x200101]']);
  });
});
