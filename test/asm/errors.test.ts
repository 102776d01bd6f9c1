/**
 * What the assembler refuses, with which code and which message: operand combinations x86 lacks
 * (thrown where the instruction is written), values that do not fit, labels missing or defined
 * twice, and branches out of reach.
 */
import { describe, expect, it } from 'vitest';
import { AsmError, Assembler, byte, dword, mem, qword, ref, type AsmErrorCode } from '../../src/asm/index.js';
import { al, ax, bl, cl, cr3, cs, dx, eax, ebx, rax, rbx, rcx } from '../../src/asm/registers.js';

function thrown(f: () => unknown): AsmError {
  try {
    f();
  } catch (e) {
    if (e instanceof AsmError) return e;
    throw e;
  }
  throw new Error('expected an AsmError');
}

function expectAsmError(f: () => unknown, code: AsmErrorCode, message: string | RegExp): void {
  const e = thrown(f);
  expect(e.code).toBe(code);
  expect(e.name).toBe('AsmError');
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
}

describe('operands x86 does not have: thrown where the instruction is written', () => {
  const a = new Assembler(64);
  it('registers of different sizes', () => {
    expectAsmError(() => a.mov(rax, ebx), 'E_OPERANDS', 'mov rax, ebx: operand sizes differ (rax is 8 bytes, ebx is 4)');
    expectAsmError(() => a.add(qword(rbx), eax), 'E_OPERANDS', 'add qword [rbx], eax: operand sizes differ (qword [rbx] is 8 bytes, eax is 4)');
  });

  it('memory to memory, and memory of unknown size', () => {
    expectAsmError(() => a.mov(qword(rax), qword(rbx)), 'E_OPERANDS', 'mov qword [rax], qword [rbx]: x86 has no memory-to-memory form');
    expectAsmError(() => a.inc(mem(rax)), 'E_OPERANDS', 'inc [rax]: operand size of [rax] unknown: use byte, word, dword or qword');
    expectAsmError(() => a.mov(mem('x'), 1), 'E_OPERANDS', 'mov [x], 0x1: operand size of [x] unknown: use byte, word, dword or qword');
  });

  it('control, segment and port registers where they cannot go', () => {
    expectAsmError(() => a.mov(cr3, eax), 'E_OPERANDS', 'mov cr3, eax: control registers move only to and from 64-bit registers in 64-bit code');
    expectAsmError(() => new Assembler(32).mov(cr3, rax), 'E_OPERANDS', /move only to and from 32-bit registers in 32-bit code/);
    expectAsmError(() => a.mov(cs, ax), 'E_OPERANDS', 'mov cs, ax: cs cannot be loaded with mov (use a far jump)');
    expectAsmError(() => a.out(dx, bl), 'E_OPERANDS', 'out dx, bl: out writes al, ax or eax');
    expectAsmError(() => a.in(al, cl), 'E_OPERANDS', 'in al, cl: the port register is dx');
    expectAsmError(() => a.shl(rax, rcx as never), 'E_OPERANDS', 'shl rax, rcx: the shift count register is cl');
  });

  it('addressing that does not exist in the mode', () => {
    expectAsmError(() => new Assembler(32).mov(eax, dword(rbx)), 'E_OPERANDS', 'mov eax, dword [rbx]: rbx does not exist in 32-bit code');
    expectAsmError(() => a.mov(al, byte({ base: ax as never })), 'E_OPERANDS', '16-bit addressing does not exist in 64-bit code'.replace(/^/, 'mov al, byte [ax]: '));
  });

  it('a far jump to an immediate in 64-bit code', () => {
    expectAsmError(() => a.jmpFar(0x18, 'x'), 'E_OPERANDS', /^jmp far 0x18:x: 64-bit code has no direct far jump/);
  });

  it('forms iced-x86 refuses to encode in the mode', () => {
    expectAsmError(() => a.push(eax), 'E_ENCODE', 'push eax (64-bit code): The instruction can only be used in 16/32-bit mode');
    expectAsmError(() => new Assembler(32).iretq(), 'E_ENCODE', 'iretq (32-bit code): The instruction can only be used in 64-bit mode');
    expectAsmError(() => new Assembler(32).repStosq(), 'E_OPERANDS', 'rep stosq: qword string instructions exist only in 64-bit code');
  });

  it('nothing is added when an instruction is refused', () => {
    const b = new Assembler(64).nop();
    expect(() => b.push(eax)).toThrow(AsmError);
    expect(Buffer.from(b.assemble(0).bytes).toString('hex')).toBe('90');
  });
});

describe('values that do not fit', () => {
  const a = new Assembler(64);
  it('immediates', () => {
    expectAsmError(() => a.mov(al, 0x100), 'E_RANGE', 'mov al, 0x100: 0x100 does not fit a 8-bit operand');
    expectAsmError(() => a.add(eax, 0x100000000), 'E_RANGE', 'add eax, 0x100000000: 0x100000000 does not fit a 32-bit operand');
    expectAsmError(() => a.mov(qword(rax), 0x80000000), 'E_RANGE', 'mov qword [rax], 0x80000000: 0x80000000 does not fit a sign-extended 32-bit immediate');
    expectAsmError(() => a.int(256), 'E_RANGE', 'int 0x100: 0x100 does not fit an interrupt vector (0..255)');
    expectAsmError(() => a.out(0x3f8, al), 'E_RANGE', 'out 0x3f8, al: 0x3f8 does not fit an 8-bit port (use dx for larger ports)');
  });

  it('numbers that are not whole, and branch targets beyond the mode', () => {
    expectAsmError(() => a.mov(eax, 1.5), 'E_RANGE', 'mov eax, 1.5: 1.5 is not a whole number (use a bigint beyond 2^53)');
    expectAsmError(() => a.shl(rax, 2.5), 'E_RANGE', 'shl rax, 2.5: 2.5 does not fit a shift count (0..255)');
    expectAsmError(() => new Assembler(32).jmp(0x100000000), 'E_RANGE', 'jmp 0x100000000: 0x100000000 does not fit a 32-bit operand');
  });

  it('absolute addresses beyond a sign-extended disp32 in 64-bit code', () => {
    expectAsmError(() => a.mov(rax, qword(0x100000000)), 'E_RANGE', 'mov rax, qword [0x100000000]: 0x100000000 does not fit a sign-extended 32-bit displacement');
  });

  it('data', () => {
    expectAsmError(() => a.db(256), 'E_RANGE', 'db 0x100: 0x100 does not fit 8 bits');
    expectAsmError(() => a.dw(-0x8001), 'E_RANGE', 'dw -0x8001: -0x8001 does not fit 16 bits');
    expectAsmError(() => a.align(3), 'E_RANGE', 'align 3: the boundary must be a power of two');
    expectAsmError(() => a.zero(-1), 'E_RANGE', 'zero -1: the count must be a whole number of bytes');
  });

  it('label values are checked once placed', () => {
    const high = () => new Assembler(32).dd(ref('hh')).bits(64).label('hh');
    expectAsmError(() => high().assemble(0xffffffff80000000n), 'E_RANGE', 'dd hh: 0xffffffff80000004 does not fit 32 bits');
    expect(Buffer.from(high().assemble(0x100000).bytes).toString('hex')).toBe('04001000');
    expectAsmError(
      () => new Assembler(32).mov(eax, ref('x')).label('x').assemble(0x100000000),
      'E_RANGE',
      'mov eax, x: 0x100000005 does not fit a 32-bit operand',
    );
  });
});

describe('labels and reach', () => {
  it('a label defined twice', () => {
    expectAsmError(() => new Assembler().label('x').nop().label('x').assemble(0), 'E_DUPLICATE_LABEL', 'label "x" is defined twice');
  });

  it('a label never defined, in an instruction, in data, and when asked for', () => {
    expectAsmError(() => new Assembler().jmp('nowhere').assemble(0), 'E_UNDEFINED_LABEL', 'jmp nowhere: label "nowhere" is not defined');
    expectAsmError(() => new Assembler().dq(ref('nowhere', 8)).assemble(0), 'E_UNDEFINED_LABEL', 'dq nowhere+0x8: label "nowhere" is not defined');
    expectAsmError(() => new Assembler().nop().assemble(0).address('x'), 'E_UNDEFINED_LABEL', 'label "x" is not defined');
  });

  it('a 64-bit branch farther than 2 GiB (BlockEncoder would split it into several instructions)', () => {
    expectAsmError(() => new Assembler(64).jne(0x800000000n).assemble(0), 'E_BRANCH_RANGE', 'jne 0x800000000: the target is out of reach of a single 64-bit branch');
    expectAsmError(() => new Assembler(64).call(0x800000000n).ret().assemble(0), 'E_BRANCH_RANGE', /^call 0x800000000: the target is out of reach/);
  });

  it('a RIP-relative operand farther than 2 GiB', () => {
    const far = (offset: bigint) => new Assembler(64).label('x').mov(rax, qword(ref('x', offset))).assemble(0);
    expectAsmError(() => far(0x100000000n), 'E_ENCODE', /^mov rax, qword \[x\+0x100000000\] \(64-bit code\): /);
    expect(Buffer.from(far(0x7fff0000n).bytes).toString('hex')).toBe('488b05f9fffe7f') // disp32 = 0x7fff0000 - 7;
  });
});
