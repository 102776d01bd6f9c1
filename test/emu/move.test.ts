/**
 * Data movement, conditions and the stack: MOV in every operand form, MOVZX/MOVSX/MOVSXD, LEA,
 * XCHG, the sign-extension family, every condition code through Jcc, SETcc and CMOVcc, PUSH/POP
 * (registers, immediates, memory), PUSHF/POPF, LEAVE, and the REP string instructions.
 */
import { describe, expect, it } from 'vitest';
import { CODE_VA, DATA_VA } from './fixtures.js';
import { Harness, decodesAs, flagsOf, le, type Init } from './harness.js';

interface Case {
  hex: string;
  text: string;
  init: Init;
  regs?: Record<string, bigint>;
  data?: [offset: number, size: number, value: bigint][];
}

const D = DATA_VA;
const CASES: Case[] = [
  { hex: '48 b8 88 77 66 55 44 33 22 11', text: 'mov rax, 0x1122334455667788', init: {}, regs: { rax: 0x1122334455667788n } },
  { hex: '48 c7 c1 ff ff ff ff', text: 'mov rcx, 0xffffffffffffffff', init: {}, regs: { rcx: 0xffffffffffffffffn } },
  { hex: '89 d8', text: 'mov eax, ebx', init: { regs: { rax: 0xffffffff00000000n, rbx: 0xaaaaaaaa12345678n } }, regs: { rax: 0x12345678n } },
  { hex: '66 89 d8', text: 'mov ax, bx', init: { regs: { rax: 0xffffffff00000000n, rbx: 0x5678n } }, regs: { rax: 0xffffffff00005678n } },
  { hex: '88 c4', text: 'mov ah, al', init: { regs: { rax: 0x1122334455667788n } }, regs: { rax: 0x1122334455668888n } },
  { hex: '44 88 c0', text: 'mov al, r8b', init: { regs: { rax: 0xff00n, r8: 0x1234n } }, regs: { rax: 0xff34n } },
  { hex: '48 8b 44 cb 10', text: 'mov rax, [rbx+rcx*8+0x10]', init: { regs: { rbx: D, rcx: 2n }, data: [[0x20, le(0xcafef00dn)]] }, regs: { rax: 0xcafef00dn } },
  { hex: '48 89 05 f9 ff 0f 00', text: 'mov [rel 0xffffffff80200000], rax', init: { regs: { rax: 0x55n } }, data: [[0, 8, 0x55n]] },
  { hex: 'c6 47 03 ff', text: 'mov byte [rdi+3], 0xff', init: { regs: { rdi: D } }, data: [[0, 8, 0xff000000n]] },
  { hex: '48 a1 08 00 20 80 ff ff ff ff', text: 'mov rax, [qword 0xffffffff80200008]', init: { data: [[8, le(0x77n)]] }, regs: { rax: 0x77n } },
  { hex: '0f b6 06', text: 'movzx eax, byte [rsi]', init: { regs: { rax: 0xffffffffffffffffn, rsi: D }, data: [[0, le(0x80n, 1)]] }, regs: { rax: 0x80n } },
  { hex: '45 0f b7 ca', text: 'movzx r9d, r10w', init: { regs: { r9: 0xffffffffffffffffn, r10: 0x12348765n } }, regs: { r9: 0x8765n } },
  { hex: '48 0f be c3', text: 'movsx rax, bl', init: { regs: { rbx: 0x80n } }, regs: { rax: 0xffffffffffffff80n } },
  { hex: '66 0f be c3', text: 'movsx ax, bl', init: { regs: { rax: 0x1111111111111111n, rbx: 0xf0n } }, regs: { rax: 0x111111111111fff0n } },
  { hex: '48 63 c3', text: 'movsxd rax, ebx', init: { regs: { rbx: 0x80000000n } }, regs: { rax: 0xffffffff80000000n } },
  { hex: '48 8d 44 8b 08', text: 'lea rax, [rbx+rcx*4+8]', init: { regs: { rbx: 0x1000n, rcx: 3n } }, regs: { rax: 0x1014n } },
  { hex: '8d 43 ff', text: 'lea eax, [rbx-1]', init: { regs: { rbx: 0n } }, regs: { rax: 0xffffffffn } },
  { hex: '64 48 8d 03', text: 'lea rax, [rbx]', init: { regs: { rbx: 0x10n }, fsBase: 0x1000n }, regs: { rax: 0x10n } },
  { hex: '65 48 8b 03', text: 'mov rax, [gs:rbx]', init: { regs: { rbx: 0x18n }, gsBase: D, data: [[0x18, le(0x6565n)]] }, regs: { rax: 0x6565n } },
  { hex: '48 93', text: 'xchg rbx, rax', init: { regs: { rax: 1n, rbx: 2n } }, regs: { rax: 2n, rbx: 1n } },
  { hex: '48 87 0b', text: 'xchg rcx, [rbx]', init: { regs: { rbx: D, rcx: 9n }, data: [[0, le(4n)]] }, regs: { rcx: 4n }, data: [[0, 8, 9n]] },
  { hex: '66 98', text: 'cbw', init: { regs: { rax: 0xffff0080n } }, regs: { rax: 0xffffff80n } },
  { hex: '98', text: 'cwde', init: { regs: { rax: 0xffffffff00008000n } }, regs: { rax: 0xffff8000n } },
  { hex: '48 98', text: 'cdqe', init: { regs: { rax: 0x80000000n } }, regs: { rax: 0xffffffff80000000n } },
  { hex: '99', text: 'cdq', init: { regs: { rax: 0x80000000n, rdx: 0xffffffffffffffffn } }, regs: { rdx: 0xffffffffn } },
  { hex: '48 99', text: 'cqo', init: { regs: { rax: 0x8000000000000000n } }, regs: { rdx: 0xffffffffffffffffn } },
  { hex: '48 0f cb', text: 'bswap rbx', init: { regs: { rbx: 0x0102030405060708n } }, regs: { rbx: 0x0807060504030201n } },
  { hex: '9f', text: 'lahf', init: { flags: '--S-A-C' }, regs: { rax: 0x9300n } },
  { hex: '0f 1f 44 00 00', text: 'nop dword [rax+rax]', init: { regs: { rax: 0xdead000000000000n } }, regs: { rax: 0xdead000000000000n } },
];

describe('data movement', () => {
  const h = new Harness();
  for (const c of CASES) {
    it(`${c.text} (${c.hex})`, () => {
      expect(decodesAs(c.hex)).toBe(c.text);
      expect(h.exec(c.hex, c.init).reason).toBe('step');
      for (const [r, v] of Object.entries(c.regs ?? {})) expect(`${r}=0x${h.reg(r).toString(16)}`).toBe(`${r}=0x${v.toString(16)}`);
      for (const [off, size, v] of c.data ?? []) expect(h.data(off, size)).toBe(v);
    });
  }

  it('sahf loads SF, ZF, AF, PF and CF from AH', () => {
    h.exec('9e', { regs: { rax: 0xd500n }, flags: 'O' });
    expect(h.flags()).toBe('-OSZAPC');
  });
});

/** The 16 conditions, from iced's order (o, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g) as opcode nibbles. */
const CONDITIONS: [nibble: number, name: string, holds: (f: Record<string, boolean>) => boolean][] = [
  [0x0, 'o', (f) => f.O!], [0x1, 'no', (f) => !f.O],
  [0x2, 'b', (f) => f.C!], [0x3, 'ae', (f) => !f.C],
  [0x4, 'e', (f) => f.Z!], [0x5, 'ne', (f) => !f.Z],
  [0x6, 'be', (f) => f.C! || f.Z!], [0x7, 'a', (f) => !f.C && !f.Z],
  [0x8, 's', (f) => f.S!], [0x9, 'ns', (f) => !f.S],
  [0xa, 'p', (f) => f.P!], [0xb, 'np', (f) => !f.P],
  [0xc, 'l', (f) => f.S !== f.O], [0xd, 'ge', (f) => f.S === f.O],
  [0xe, 'le', (f) => f.Z! || f.S !== f.O], [0xf, 'g', (f) => !f.Z && f.S === f.O],
];

/** Every combination of O, S, Z, P and C. */
const FLAG_SETS = Array.from({ length: 32 }, (_, n) => ['O', 'S', 'Z', 'P', 'C'].filter((_, k) => n & (1 << k)).join(''));

describe('every condition code', () => {
  const h = new Harness();
  for (const [nib, name, holds] of CONDITIONS) {
    it(`j${name}, set${name} and cmov${name} agree with the SDM's predicate on all 32 flag combinations`, () => {
      const jcc = `${(0x70 + nib).toString(16)} 10`;
      const setcc = `0f ${(0x90 + nib).toString(16)} c0`;
      const cmov = `0f ${(0x40 + nib).toString(16)} c3`;
      expect(decodesAs(setcc)).toBe(`set${name} al`);
      for (const fl of FLAG_SETS) {
        const f = Object.fromEntries(['O', 'S', 'Z', 'P', 'C'].map((k) => [k, fl.includes(k)]));
        const want = holds(f);
        h.exec(jcc, { flags: fl });
        expect(h.reg('rip')).toBe(CODE_VA + (want ? 0x12n : 2n));
        h.exec(setcc, { regs: { rax: 0xff00n }, flags: fl });
        expect(h.reg('rax')).toBe(want ? 0xff01n : 0xff00n);
        h.exec(cmov, { regs: { rax: 0xffffffff00000001n, rbx: 2n }, flags: fl });
        // A 32-bit CMOV writes its destination either way (zero-extending it).
        expect(h.reg('rax')).toBe(want ? 2n : 1n);
      }
    });
  }
});

describe('the stack', () => {
  const h = new Harness();
  const SP = D + 0x8000n;

  it('push reg, imm8, imm32 and memory; pop reg and memory', () => {
    h.exec('53', { regs: { rbx: 0xabcdn } });
    expect(h.reg('rsp')).toBe(SP - 8n);
    expect(h.data(0x7ff8)).toBe(0xabcdn);
    h.exec('6a ff', {});
    expect(h.data(0x7ff8)).toBe(0xffffffffffffffffn);
    h.exec('68 00 00 00 80', {});
    expect(h.data(0x7ff8)).toBe(0xffffffff80000000n);
    h.exec('ff 33', { regs: { rbx: D }, data: [[0, le(0x1234n)]] });
    expect(decodesAs('ff 33')).toBe('push qword [rbx]');
    expect(h.data(0x7ff8)).toBe(0x1234n);
    h.exec('41 5c', { data: [[0x8000, le(0x99n)]] });
    expect(h.reg('r12')).toBe(0x99n);
    expect(h.reg('rsp')).toBe(SP + 8n);
    h.exec('8f 03', { regs: { rbx: D }, data: [[0x8000, le(0x42n)]] });
    expect(h.data(0)).toBe(0x42n);
  });

  it('push rsp pushes the old value; pop rsp loads the popped one; a 16-bit push moves RSP by 2', () => {
    h.exec('54', {});
    expect(h.data(0x7ff8)).toBe(SP);
    h.exec('5c', { data: [[0x8000, le(0x1122n)]] });
    expect(h.reg('rsp')).toBe(0x1122n);
    h.exec('66 53', { regs: { rbx: 0x5566n } });
    expect(h.reg('rsp')).toBe(SP - 2n);
    expect(h.data(0x7ffe, 2)).toBe(0x5566n);
  });

  it('pushfq clears RF in the image; popfq keeps bit 1 and cannot set VM', () => {
    h.exec('9c', { flags: 'OC' });
    expect(h.data(0x7ff8)).toBe(BigInt(flagsOf('OC')));
    h.exec('9d', { data: [[0x8000, le(0x20000n | 0x40n | 0x1n)]] });
    expect(Number(h.reg('eflags'))).toBe(0x2 | 0x40 | 0x1);
  });

  it('leave restores RSP from RBP and pops RBP', () => {
    h.exec('c9', { regs: { rbp: D + 0x100n }, data: [[0x100, le(0x777n)]] });
    expect(h.reg('rbp')).toBe(0x777n);
    expect(h.reg('rsp')).toBe(D + 0x108n);
  });
});

describe('string instructions', () => {
  const h = new Harness();

  it('rep stosq fills RCX qwords and leaves RCX 0, RDI past the end', () => {
    expect(decodesAs('f3 48 ab')).toBe('rep stosq');
    h.exec('f3 48 ab', { regs: { rax: 0x5a5an, rcx: 4n, rdi: D + 0x10n } });
    expect([h.data(0x10), h.data(0x18), h.data(0x20), h.data(0x28), h.data(0x30)]).toEqual([0x5a5an, 0x5a5an, 0x5a5an, 0x5a5an, 0n]);
    expect(h.reg('rcx')).toBe(0n);
    expect(h.reg('rdi')).toBe(D + 0x30n);
  });

  it('rep movsb copies forward, and backward with DF=1', () => {
    h.exec('f3 a4', { regs: { rcx: 3n, rsi: D, rdi: D + 0x40n }, data: [[0, new Uint8Array([1, 2, 3, 4])]] });
    expect(h.data(0x40, 4)).toBe(0x030201n);
    h.exec('f3 a4', { regs: { rcx: 3n, rsi: D + 2n, rdi: D + 0x42n }, flags: 'D', data: [[0, new Uint8Array([7, 8, 9])]] });
    expect(h.data(0x40, 3)).toBe(0x090807n);
    expect(h.reg('rsi')).toBe(D - 1n);
  });

  it('rep with RCX=0 does nothing; lodsb and stosd step by their size; movsd is the string form', () => {
    h.exec('f3 48 ab', { regs: { rcx: 0n, rdi: D } });
    expect(h.reg('rdi')).toBe(D);
    h.exec('ac', { regs: { rax: 0xffffn, rsi: D }, data: [[0, le(0x41n, 1)]] });
    expect(h.reg('rax')).toBe(0xff41n);
    expect(h.reg('rsi')).toBe(D + 1n);
    h.exec('ab', { regs: { rax: 0x11223344n, rdi: D } });
    expect(h.data(0, 4)).toBe(0x11223344n);
    expect(h.reg('rdi')).toBe(D + 4n);
    expect(decodesAs('f3 a5')).toBe('rep movsd');
    h.exec('f3 a5', { regs: { rcx: 1n, rsi: D, rdi: D + 8n }, data: [[0, le(0xdeadbeefn, 4)]] });
    expect(h.data(8, 4)).toBe(0xdeadbeefn);
  });

  it('repne scasb finds a byte; repe cmpsb stops at the first difference', () => {
    h.exec('f2 ae', { regs: { rax: 0x33n, rcx: 10n, rdi: D }, data: [[0, new Uint8Array([0x11, 0x22, 0x33, 0x44])]] });
    expect(h.reg('rdi')).toBe(D + 3n);
    expect(h.reg('rcx')).toBe(7n);
    expect(h.flags()).toContain('Z');
    h.exec('f3 a6', { regs: { rcx: 8n, rsi: D, rdi: D + 0x20n }, data: [[0, new Uint8Array([1, 2, 3])], [0x20, new Uint8Array([1, 2, 4])]] });
    expect(h.reg('rcx')).toBe(5n);
    expect(h.flags()).not.toContain('Z');
  });
});
