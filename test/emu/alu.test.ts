/**
 * Arithmetic and logic: golden results and flags (in QEMU's [DOSZAPC] letters) for every ALU
 * instruction class, including the partial-register rules (8/16-bit writes merge, 32-bit writes
 * zero the upper half) and #DE.
 */
import { describe, expect, it } from 'vitest';
import { Harness, decodesAs, le, type Init } from './harness.js';

interface Case {
  hex: string;
  text: string;
  init: Init;
  regs?: Record<string, bigint>;
  flags?: string;
  data?: [offset: number, size: number, value: bigint][];
}

const ALL = 'DOSZAPC'.replace('D', '-');

const CASES: Case[] = [
  // ADD / ADC
  { hex: '48 01 d8', text: 'add rax, rbx', init: { regs: { rax: 0x7fffffffffffffffn, rbx: 1n } }, regs: { rax: 0x8000000000000000n }, flags: '-OS-AP-' },
  { hex: '04 01', text: 'add al, 1', init: { regs: { rax: 0x12345678000000ffn } }, regs: { rax: 0x1234567800000000n }, flags: '---ZAPC' },
  { hex: '11 c8', text: 'adc eax, ecx', init: { regs: { rax: 0xdeadbeefffffffffn, rcx: 0n }, flags: 'C' }, regs: { rax: 0n }, flags: '---ZAPC' },
  { hex: '66 11 d8', text: 'adc ax, bx', init: { regs: { rax: 0xffff_0000_7ffen, rbx: 1n }, flags: 'C' }, regs: { rax: 0xffff_0000_8000n }, flags: '-OS-AP-' },
  { hex: '48 83 c0 ff', text: 'add rax, 0xffffffffffffffff', init: { regs: { rax: 1n } }, regs: { rax: 0n }, flags: '---ZAPC' },
  // SUB / SBB / CMP
  { hex: '48 29 d8', text: 'sub rax, rbx', init: { regs: { rax: 0n, rbx: 1n } }, regs: { rax: 0xffffffffffffffffn }, flags: '--S-APC' },
  { hex: '48 19 d8', text: 'sbb rax, rbx', init: { regs: { rax: 5n, rbx: 2n }, flags: 'C' }, regs: { rax: 2n }, flags: '-------' },
  { hex: '48 39 d8', text: 'cmp rax, rbx', init: { regs: { rax: 0x8000000000000000n, rbx: 1n } }, regs: { rax: 0x8000000000000000n }, flags: '-O--AP-' },
  { hex: '3c 80', text: 'cmp al, 0x80', init: { regs: { rax: 0x7fn } }, flags: '-OS--PC' },
  // AND / OR / XOR / TEST: CF, OF and AF cleared
  { hex: '48 21 d8', text: 'and rax, rbx', init: { regs: { rax: 0xf0f0n, rbx: 0x0ff0n }, flags: ALL }, regs: { rax: 0xf0n }, flags: '-----P-' },
  { hex: '83 c8 ff', text: 'or eax, 0xffffffff', init: { regs: { rax: 0x1234_0000_0000n } }, regs: { rax: 0xffffffffn }, flags: '--S--P-' },
  { hex: '31 c0', text: 'xor eax, eax', init: { regs: { rax: 0xffff_ffff_ffffn }, flags: 'OC' }, regs: { rax: 0n }, flags: '---Z-P-' },
  { hex: '48 85 c0', text: 'test rax, rax', init: { regs: { rax: 0x8000000000000000n } }, regs: { rax: 0x8000000000000000n }, flags: '--S--P-' },
  // INC / DEC keep CF; NEG sets it unless 0; NOT touches no flag
  { hex: '48 ff c0', text: 'inc rax', init: { regs: { rax: 0x7fffffffffffffffn }, flags: 'C' }, regs: { rax: 0x8000000000000000n }, flags: '-OS-APC' },
  { hex: 'ff c9', text: 'dec ecx', init: { regs: { rcx: 0xffff_0000_0000n } }, regs: { rcx: 0xffffffffn }, flags: '--S-AP-' },
  { hex: 'fe c4', text: 'inc ah', init: { regs: { rax: 0x7f00n } }, regs: { rax: 0x8000n }, flags: '-OS-A--' },
  { hex: '48 f7 d8', text: 'neg rax', init: { regs: { rax: 1n } }, regs: { rax: 0xffffffffffffffffn }, flags: '--S-APC' },
  { hex: '48 f7 d8', text: 'neg rax', init: { regs: { rax: 0n }, flags: 'C' }, regs: { rax: 0n }, flags: '---Z-P-' },
  { hex: '48 f7 d0', text: 'not rax', init: { regs: { rax: 0xffn }, flags: ALL }, regs: { rax: 0xffffffffffffff00n }, flags: ALL },
  // Memory destinations (read-modify-write)
  { hex: '48 83 03 01', text: 'add qword [rbx], 1', init: { regs: { rbx: 0xffffffff80200000n }, data: [[0, le(0xffffffffffffffffn)]] }, data: [[0, 8, 0n]], flags: '---ZAPC' },
  { hex: '80 33 ff', text: 'xor byte [rbx], 0xff', init: { regs: { rbx: 0xffffffff80200010n }, data: [[0x10, le(0x0f0fn, 2)]] }, data: [[0x10, 2, 0x0ff0n]], flags: '--S--P-' },
  // IMUL / MUL (SF, ZF, PF from the low half, AF clear, as QEMU)
  { hex: '48 0f af c3', text: 'imul rax, rbx', init: { regs: { rax: 0x100000000n, rbx: 0x100000000n } }, regs: { rax: 0n }, flags: '-O-Z-PC' },
  { hex: '48 6b c3 fd', text: 'imul rax, rbx, 0xfffffffffffffffd', init: { regs: { rbx: 5n } }, regs: { rax: 0xfffffffffffffff1n }, flags: '--S----' },
  { hex: '69 c3 00 00 01 00', text: 'imul eax, ebx, 0x10000', init: { regs: { rax: 0xffff_0000_0000n, rbx: 0x8000n } }, regs: { rax: 0x80000000n }, flags: '-OS--PC' },
  { hex: '48 f7 eb', text: 'imul rbx', init: { regs: { rax: 0xffffffffffffffffn, rbx: 2n } }, regs: { rax: 0xfffffffffffffffen, rdx: 0xffffffffffffffffn }, flags: '--S----' },
  { hex: '48 f7 e3', text: 'mul rbx', init: { regs: { rax: 0xffffffffffffffffn, rbx: 2n } }, regs: { rax: 0xfffffffffffffffen, rdx: 1n }, flags: '-OS---C' },
  { hex: 'f6 e3', text: 'mul bl', init: { regs: { rax: 0xaaaa_0010n, rbx: 0x10n } }, regs: { rax: 0xaaaa_0100n }, flags: '-O-Z-PC' },
  { hex: 'f7 e3', text: 'mul ebx', init: { regs: { rax: 0x8000_0000n, rbx: 4n, rdx: 0xffff_ffff_ffffn } }, regs: { rax: 0n, rdx: 2n }, flags: '-O-Z-PC' },
  // DIV / IDIV leave the flags alone
  { hex: '48 f7 f3', text: 'div rbx', init: { regs: { rax: 100n, rdx: 0n, rbx: 7n }, flags: 'Z' }, regs: { rax: 14n, rdx: 2n }, flags: '---Z---' },
  { hex: '48 f7 fb', text: 'idiv rbx', init: { regs: { rax: BigInt.asUintN(64, -100n), rdx: 0xffffffffffffffffn, rbx: 7n } }, regs: { rax: BigInt.asUintN(64, -14n), rdx: BigInt.asUintN(64, -2n) } },
  { hex: 'f6 f3', text: 'div bl', init: { regs: { rax: 0x1234_0107n, rbx: 0x10n } }, regs: { rax: 0x1234_0710n } },
  // Shifts: count masked, CF the last bit out, OF per QEMU, AF clear
  { hex: '48 c1 e0 04', text: 'shl rax, 4', init: { regs: { rax: 0x1800000000000001n } }, regs: { rax: 0x8000000000000010n }, flags: '--S---C' },
  { hex: '48 d1 e8', text: 'shr rax, 1', init: { regs: { rax: 0x8000000000000001n } }, regs: { rax: 0x4000000000000000n }, flags: '-O---PC' },
  { hex: '48 d3 f8', text: 'sar rax, cl', init: { regs: { rax: 0x8000000000000010n, rcx: 4n } }, regs: { rax: 0xf800000000000001n }, flags: '--S----' },
  { hex: '48 d3 e0', text: 'shl rax, cl', init: { regs: { rax: 5n, rcx: 64n }, flags: 'OZC' }, regs: { rax: 5n }, flags: '-O-Z--C' },
  { hex: 'c0 e0 09', text: 'shl al, 9', init: { regs: { rax: 0x01ffn } }, regs: { rax: 0x0100n }, flags: '---Z-P-' },
  // Rotates: only CF and OF
  { hex: '48 c1 c0 08', text: 'rol rax, 8', init: { regs: { rax: 0x8100000000000000n }, flags: 'Z' }, regs: { rax: 0x81n }, flags: '-O-Z--C' },
  { hex: 'd0 c8', text: 'ror al, 1', init: { regs: { rax: 0x01n } }, regs: { rax: 0x80n }, flags: '-O----C' },
  { hex: '48 d1 d0', text: 'rcl rax, 1', init: { regs: { rax: 0x8000000000000000n }, flags: 'C' }, regs: { rax: 1n }, flags: '-O----C' },
  { hex: 'd0 d8', text: 'rcr al, 1', init: { regs: { rax: 0x01n } }, regs: { rax: 0n }, flags: '------C' },
  { hex: 'c0 d0 09', text: 'rcl al, 9', init: { regs: { rax: 0x80n }, flags: 'C' }, regs: { rax: 0x80n }, flags: '------C' },
  // Bit tests and scans
  { hex: '48 0f a3 d8', text: 'bt rax, rbx', init: { regs: { rax: 0b100n, rbx: 66n } }, flags: '------C' },
  { hex: '48 0f ab 03', text: 'bts [rbx], rax', init: { regs: { rbx: 0xffffffff80200000n, rax: 65n } }, data: [[8, 8, 2n]], flags: '-------' },
  { hex: '48 0f b3 03', text: 'btr [rbx], rax', init: { regs: { rbx: 0xffffffff80200008n, rax: BigInt.asUintN(64, -1n) }, data: [[0, le(0x8000000000000000n)]] }, data: [[0, 8, 0n]], flags: '------C' },
  { hex: '48 0f ba f8 3f', text: 'btc rax, 0x3f', init: { regs: { rax: 1n } }, regs: { rax: 0x8000000000000001n }, flags: '-------' },
  { hex: '48 0f bc c3', text: 'bsf rax, rbx', init: { regs: { rbx: 0x80n } }, regs: { rax: 7n }, flags: '-------' },
  { hex: '48 0f bd c3', text: 'bsr rax, rbx', init: { regs: { rbx: 0x8000000000000001n } }, regs: { rax: 63n } },
  { hex: '48 0f bc c3', text: 'bsf rax, rbx', init: { regs: { rax: 0x1234n, rbx: 0n } }, regs: { rax: 0x1234n }, flags: '---Z-P-' },
  // XADD / CMPXCHG
  { hex: '48 0f c1 d8', text: 'xadd rax, rbx', init: { regs: { rax: 1n, rbx: 2n } }, regs: { rax: 3n, rbx: 1n }, flags: '-----P-' },
  { hex: '48 0f b1 0b', text: 'cmpxchg [rbx], rcx', init: { regs: { rbx: 0xffffffff80200000n, rax: 5n, rcx: 9n }, data: [[0, le(5n)]] }, regs: { rax: 5n }, data: [[0, 8, 9n]], flags: '---Z-P-' },
  { hex: '48 0f b1 0b', text: 'cmpxchg [rbx], rcx', init: { regs: { rbx: 0xffffffff80200000n, rax: 5n, rcx: 9n }, data: [[0, le(7n)]] }, regs: { rax: 7n }, data: [[0, 8, 7n]], flags: '--S-A-C' },
];

describe('ALU semantics', () => {
  const h = new Harness();
  for (const c of CASES) {
    it(`${c.text} from ${JSON.stringify(c.init, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v instanceof Uint8Array ? [...v] : v))}`, () => {
      expect(decodesAs(c.hex)).toBe(c.text);
      const stop = h.exec(c.hex, c.init);
      expect(stop.reason).toBe('step');
      for (const [r, v] of Object.entries(c.regs ?? {})) expect(`${r}=0x${h.reg(r).toString(16)}`).toBe(`${r}=0x${v.toString(16)}`);
      if (c.flags !== undefined) expect(h.flags()).toBe(c.flags);
      for (const [off, size, v] of c.data ?? []) expect(h.data(off, size)).toBe(v);
    });
  }
});

describe('#DE', () => {
  it('is raised by division by zero and by a quotient that does not fit, before any register changes', () => {
    const h = new Harness({ gates: { 0: { at: 0xffffffff80100800n } } });
    h.exec('48 f7 f3', { regs: { rax: 1n, rdx: 0n, rbx: 0n } });
    expect(h.reg('rip')).toBe(0xffffffff80100800n);
    expect(h.m.log.text()).toContain('v=00 e=0000 i=0');
    h.exec('48 f7 f3', { regs: { rax: 0n, rdx: 1n, rbx: 1n } });
    expect(h.reg('rip')).toBe(0xffffffff80100800n);
    expect(h.reg('rax')).toBe(0n);
    expect(h.reg('rdx')).toBe(1n);
    h.exec('48 f7 fb', { regs: { rax: 0x8000000000000000n, rdx: 0xffffffffffffffffn, rbx: 0xffffffffffffffffn } });
    expect(h.reg('rip')).toBe(0xffffffff80100800n);
  });
});
