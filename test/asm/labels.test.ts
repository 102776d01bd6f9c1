/**
 * Labels and placement: forward and backward branches (short where they reach, near where they do
 * not), branches across data, label values in data and immediates, RIP-relative operands, and a
 * property test over random programs whose branch targets must decode back to their labels.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler, disassemble, distance, mem, qword, ref, type Bits, type Condition } from '../../src/asm/index.js';
import { eax, rax } from '../../src/asm/registers.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function nops(a: Assembler, n: number): Assembler {
  for (let i = 0; i < n; i++) a.nop();
  return a;
}

describe('branch sizes', () => {
  it('a forward jmp is short when iced can prove it reaches, near from +128', () => {
    const short = nops(new Assembler(64).jmp('end'), 120).label('end').assemble(0x1000);
    expect(hex(short.bytes.subarray(0, 2))).toBe('eb78');
    const near = nops(new Assembler(64).jmp('end'), 128).label('end').assemble(0x1000);
    expect(hex(near.bytes.subarray(0, 5))).toBe('e980000000');
    expect(near.address('end')).toBe(0x1000n + 5n + 128n);
    // BlockEncoder sizes a forward branch from the near layout, so +125..+127 stay near: still right.
    for (const n of [125, 126, 127]) {
      const a = nops(new Assembler(64).jmp('end'), n).label('end').assemble(0x1000);
      const [line] = disassemble(a.bytes, 64, 0x1000, 1);
      expect(line!.text).toBe(`jmp 0x${a.address('end').toString(16)}`);
    }
  });

  it('a backward jmp is short down to -128 and near below', () => {
    const short = nops(new Assembler(64).label('top'), 126).jmp('top').assemble(0x1000);
    expect(hex(short.bytes.subarray(126))).toBe('eb80');
    const near = nops(new Assembler(64).label('top'), 127).jmp('top').assemble(0x1000);
    expect(hex(near.bytes.subarray(127))).toBe('e97cffffff'); // -(127 + 5)
  });

  it('a jcc is 2 bytes when short, 6 when near (0f 8x rel32), in 32-bit code too', () => {
    const a = nops(new Assembler(32).label('top').jne('end'), 200).jz('top').label('end').assemble(0x100000);
    expect(hex(a.bytes.subarray(0, 6))).toBe('0f85ce000000'); // jne +0xce past 200 nops and the 6-byte jz
    expect(hex(a.bytes.subarray(206))).toBe('0f842cffffff'); // jz back to top: -(206 + 6)
  });

  it('16-bit near branches take rel16', () => {
    const a = nops(new Assembler(16).label('top'), 300).jmp('top').call('top').assemble(0x7c00);
    expect(hex(a.bytes.subarray(300))).toBe('e9d1fee8cefe');
  });

  it('branches across data are placed by iterating to a fixpoint', () => {
    const over = (n: number) => new Assembler(64).jmp('after').zero(n).label('after').ret().assemble(0x1000);
    expect(hex(over(100).bytes.subarray(0, 2))).toBe('eb64');
    expect(hex(over(300).bytes.subarray(0, 5))).toBe('e92c010000');
    expect(over(300).address('after')).toBe(0x1000n + 5n + 300n);
  });
});

describe('label values', () => {
  it('labels are the addresses of what follows them, including at the end', () => {
    const a = new Assembler(64).label('a').label('b').nop().label('c').dq(1).label('end').assemble(0xffffffff80000000n);
    expect([...a.labels]).toEqual([
      ['a', 0xffffffff80000000n],
      ['b', 0xffffffff80000000n],
      ['c', 0xffffffff80000001n],
      ['end', 0xffffffff80000009n],
    ]);
    expect(a.end).toBe(0xffffffff80000009n);
    expect(a.offset('end')).toBe(9);
  });

  it('data holds label values, distances and offsets, little-endian', () => {
    const a = new Assembler(32)
      .label('start')
      .dd(ref('start'), ref('end', -4), distance('start', 'end'))
      .dw(distance('start', 'end', -1))
      .dq(ref('start', 0x100000000n))
      .db(distance('start', 'end'))
      .label('end')
      .assemble(0x12340000);
    expect(hex(a.bytes)).toBe(['00003412', '13003412', '17000000', '1600', '0000341201000000', '17'].join(''));
  });

  it('align pads with the fill byte to the boundary, and not at all when already aligned', () => {
    const a = new Assembler(64).nop().align(16, 0xcc).label('x').align(16).dq(0).assemble(0x1000);
    expect(hex(a.bytes.subarray(0, 16))).toBe(`90${'cc'.repeat(15)}`);
    expect(a.address('x')).toBe(0x1010n);
    expect(a.bytes.length).toBe(24);
  });

  it('a label in a 64-bit memory operand is RIP-relative, in 32-bit code absolute', () => {
    const a64 = new Assembler(64).mov(rax, qword('v')).lea(rax, mem('v', 8)).label('v').dq(0).assemble(0xffffffff80000000n);
    expect(disassemble(a64.bytes, 64, a64.origin, 2).map((l) => l.text)).toEqual([
      'mov rax, [rel 0xffffffff8000000e]',
      'lea rax, [rel 0xffffffff80000016]',
    ]);
    expect(hex(a64.bytes.subarray(0, 7))).toBe('488b0507000000');
    const a32 = new Assembler(32).mov(eax, mem('v')).label('v').dd(0).assemble(0x100000);
    expect(hex(a32.bytes.subarray(0, 6))).toBe('8b0506001000'); // the mov eax, moffs32 short form is not used
  });

  it('a label as an immediate takes the widest form, so placement cannot change sizes', () => {
    const a = new Assembler(64).mov(rax, ref('v')).mov(eax, ref('v')).label('v').assemble(0);
    expect(hex(a.bytes)).toBe('48b80f00000000000000b80f000000');
  });

  it('assembling is deterministic and an Assembler can be placed at several origins', () => {
    const a = new Assembler(64).label('l').jmp('l').dq(ref('l'));
    expect(hex(a.assemble(0x1000).bytes)).toBe(hex(a.assemble(0x1000).bytes));
    expect(hex(a.assemble(0x2000).bytes)).toBe('ebfe0020000000000000');
  });

  it('switching modes splits the code into runs with their own encoding', () => {
    const a = new Assembler(32).label('x').jmp('y').bits(64).label('y').jmp('x').push(rax).assemble(0x1000);
    expect(disassemble(a.bytes.subarray(0, 2), 32, 0x1000).map((l) => l.text)).toEqual(['jmp 0x1002']);
    expect(disassemble(a.bytes.subarray(2), 64, 0x1002).map((l) => l.text)).toEqual(['jmp 0x1000', 'push rax']);
  });
});

type Op = { kind: 'label' } | { kind: 'filler'; n: number } | { kind: 'data'; n: number } | { kind: 'branch'; cc: Condition | 'jmp' | 'call'; to: number };

const CONDITIONS: (Condition | 'jmp' | 'call')[] = ['jmp', 'call', 'e', 'ne', 'b', 'ae', 'l', 'ge', 's', 'o'];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ kind: 'label' }),
  fc.record({ kind: fc.constant('filler' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('data' as const), n: fc.integer({ min: 0, max: 200 }) }),
  fc.record({ kind: fc.constant('branch' as const), cc: fc.constantFrom(...CONDITIONS), to: fc.nat() }),
);

describe('property: every branch decodes back to its label', () => {
  for (const bits of [16, 32, 64] as Bits[]) {
    it(`${bits}-bit code`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
          const labelCount = ops.filter((o) => o.kind === 'label').length + 1;
          const a = new Assembler(bits).label('L0');
          let labels = 1;
          const branches: { at: string; to: string }[] = [];
          for (const op of ops) {
            if (op.kind === 'label') a.label(`L${labels++}`);
            else if (op.kind === 'filler') a.mov(eax, op.n); // 5 or 6 bytes of straight code
            else if (op.kind === 'data') a.zero(op.n);
            else {
              const at = `B${branches.length}`;
              const to = `L${op.to % labelCount}`;
              a.label(at);
              if (op.cc === 'jmp') a.jmp(to);
              else if (op.cc === 'call') a.call(to);
              else a.j(op.cc, to);
              branches.push({ at, to });
            }
          }
          const code = a.assemble(bits === 64 ? 0xffffffff80000000n : 0x1000);
          for (const b of branches) {
            const [line] = disassemble(code.bytes.subarray(code.offset(b.at)), bits, code.address(b.at), 1);
            const target = BigInt(line!.text.split(' ').pop()!);
            expect(target, `${b.at}: ${line!.text}`).toBe(code.address(b.to));
          }
        }),
        { numRuns: 60 },
      );
    });
  }
});
