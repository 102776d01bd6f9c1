/**
 * RSP reply codecs, on replies as QEMU 7.2 sends them (QEMU-FACTS.md) and on malformed ones.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GdbSignal,
  bytesToHex,
  decodeRegister,
  encodeRegister,
  formatThreadId,
  hexToBytes,
  hexToText,
  isStopReply,
  latin1,
  parseErrorReply,
  parseOutputPacket,
  parseStopReply,
  parseSupported,
  parseThreadId,
  parseVContActions,
  parseXferChunk,
  supportedPacketSize,
  textToHex,
} from '../../src/rsp/codec.js';
import { RspError } from '../../src/rsp/errors.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

function protocolError(f: () => unknown): RspError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RspError);
    expect((e as RspError).code).toBe('E_PROTOCOL');
    return e as RspError;
  }
  throw new Error('expected an E_PROTOCOL error');
}

describe('hex and bytes', () => {
  it('converts both ways, either case, from strings or packet bytes', () => {
    expect(bytesToHex(Uint8Array.of(0xea, 0x5b, 0xe0, 0x00, 0xf0))).toBe('ea5be000f0');
    expect(hexToBytes('EA5be000F0')).toEqual(Uint8Array.of(0xea, 0x5b, 0xe0, 0x00, 0xf0));
    expect(hexToBytes(ascii('ea5be000f0'))).toEqual(Uint8Array.of(0xea, 0x5b, 0xe0, 0x00, 0xf0));
    expect(hexToBytes('')).toEqual(new Uint8Array(0));
  });

  it('rejects odd lengths and non-hex digits with E_PROTOCOL', () => {
    expect(protocolError(() => hexToBytes('abc')).message).toMatch(/odd-length hex data \(3 digits\)/);
    expect(protocolError(() => hexToBytes('0g')).message).toMatch(/not hex data at digit 1/);
    protocolError(() => hexToBytes(ascii('zz')));
    protocolError(() => hexToBytes('\u0130\u0130'));
  });

  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array(), (b) => {
        expect(hexToBytes(bytesToHex(b))).toEqual(b);
      }),
    );
  });

  it('encodes monitor commands as UTF-8 hex and decodes output', () => {
    expect(textToHex('info mem')).toBe('696e666f206d656d');
    expect(hexToText('4f4b0d0a')).toBe('OK\r\n');
    expect(latin1(Uint8Array.of(0x24, 0xff, 0x00))).toBe('$\xff\x00');
  });
});

describe('register values', () => {
  it('are little-endian, full width', () => {
    // QEMU-FACTS: p1d -> 0000110000000000 is cr3 0x110000; eflags is 32 bits.
    expect(decodeRegister('0000110000000000')).toBe(0x110000n);
    expect(encodeRegister(0x110000n, 64)).toBe('0000110000000000');
    expect(encodeRegister(0x46n, 32)).toBe('46000000');
    expect(encodeRegister(0xffffffff80101007n, 64)).toBe('07101080ffffffff');
    expect(decodeRegister('07101080ffffffff')).toBe(0xffffffff80101007n);
    // An 80-bit x87 register and a 128-bit xmm register.
    expect(encodeRegister(0x3fff8000000000000000n, 80)).toBe('0000000000000080ff3f');
    expect(decodeRegister('00112233445566778899aabbccddeeff')).toBe(0xffeeddccbbaa99887766554433221100n);
  });

  it('refuse values that do not fit and widths that are not whole bytes', () => {
    expect(() => encodeRegister(1n << 32n, 32)).toThrow(RangeError);
    expect(() => encodeRegister(-1n, 64)).toThrow(RangeError);
    expect(() => encodeRegister(0n, 12)).toThrow(RangeError);
  });

  it('are null where the stub marks them unavailable', () => {
    expect(decodeRegister('xxxxxxxx')).toBeNull();
    protocolError(() => decodeRegister('00x0'));
  });

  it('round-trip at every width', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (bytes, v) => {
        const value = v & ((1n << BigInt(bytes * 8)) - 1n);
        const h = encodeRegister(value, bytes * 8);
        expect(h).toHaveLength(bytes * 2);
        expect(decodeRegister(h)).toBe(value);
      }),
    );
  });
});

describe('error replies', () => {
  it('are Exx (three characters) or E.text; hex data of even length never is one', () => {
    expect(parseErrorReply('E14')).toEqual({ errno: 0x14, text: null });
    expect(parseErrorReply('E22')).toEqual({ errno: 0x22, text: null });
    expect(parseErrorReply('E.no such annex')).toEqual({ errno: null, text: 'no such annex' });
    expect(parseErrorReply('OK')).toBeNull();
    expect(parseErrorReply('E1')).toBeNull();
    expect(parseErrorReply('E140')).toBeNull(); // two bytes of memory, 0xe1 0x40
    expect(parseErrorReply('')).toBeNull();
  });
});

describe('thread ids', () => {
  it('parse both forms, -1 for all', () => {
    expect(parseThreadId('01')).toEqual({ pid: null, tid: 1 });
    expect(parseThreadId('p01.01')).toEqual({ pid: 1, tid: 1 });
    expect(parseThreadId('p1.2')).toEqual({ pid: 1, tid: 2 });
    expect(parseThreadId('p1.-1')).toEqual({ pid: 1, tid: -1 });
    expect(parseThreadId('-1')).toEqual({ pid: null, tid: -1 });
    expect(parseThreadId('p01')).toEqual({ pid: 1, tid: -1 });
    protocolError(() => parseThreadId('p1.x'));
    protocolError(() => parseThreadId(''));
  });

  it('format back', () => {
    expect(formatThreadId({ pid: 1, tid: 1 })).toBe('p1.1');
    expect(formatThreadId({ pid: null, tid: 0x1f })).toBe('1f');
    expect(formatThreadId({ pid: 1, tid: -1 })).toBe('p1.-1');
  });
});

describe('stop replies', () => {
  it('parse a breakpoint or step stop, in both thread forms', () => {
    expect(parseStopReply('T05thread:01;')).toEqual({
      kind: 'stopped',
      signal: GdbSignal.TRAP,
      thread: { pid: null, tid: 1 },
      core: null,
      watch: null,
      breakpoint: null,
      registers: new Map(),
      fields: new Map(),
    });
    expect(parseStopReply('T05thread:p01.01;')).toMatchObject({ signal: 5, thread: { pid: 1, tid: 1 } });
  });

  it('parse watchpoint stops with the address as inserted', () => {
    expect(parseStopReply('T05thread:p01.01;watch:ffffffff80102018;')).toMatchObject({
      signal: 5,
      watch: { kind: 'write', address: 0xffffffff80102018n },
    });
    expect(parseStopReply('T05thread:p01.01;rwatch:ffffffff80102000;')).toMatchObject({ watch: { kind: 'read', address: 0xffffffff80102000n } });
    expect(parseStopReply('T05thread:p01.01;awatch:1000;')).toMatchObject({ watch: { kind: 'access', address: 0x1000n } });
  });

  it('parse interrupt and shutdown stops, S, swbreak/hwbreak, core, registers and other fields', () => {
    expect(parseStopReply('T02thread:01;')).toMatchObject({ signal: GdbSignal.INT });
    expect(parseStopReply('T03thread:p01.01;')).toMatchObject({ signal: GdbSignal.QUIT });
    expect(parseStopReply('S05')).toMatchObject({ kind: 'stopped', signal: 5, thread: null });
    expect(parseStopReply('T05swbreak:;thread:p1.1;core:3;')).toMatchObject({ breakpoint: 'software', core: 3 });
    expect(parseStopReply('T05hwbreak:;')).toMatchObject({ breakpoint: 'hardware' });
    const r = parseStopReply('T0510:f0ff000000000000;6:0000000000000000;library:;');
    expect(r.kind === 'stopped' && [...r.registers]).toEqual([
      [0x10, 'f0ff000000000000'],
      [6, '0000000000000000'],
    ]);
    expect(r.kind === 'stopped' && [...r.fields]).toEqual([['library', '']]);
  });

  it('parse exits and terminations, with or without a process', () => {
    expect(parseStopReply('W00')).toEqual({ kind: 'exited', code: 0, pid: null });
    expect(parseStopReply('W01;process:1a')).toEqual({ kind: 'exited', code: 1, pid: 0x1a });
    expect(parseStopReply('X09')).toEqual({ kind: 'terminated', code: 9, pid: null });
  });

  it('reject malformed ones with E_PROTOCOL', () => {
    protocolError(() => parseStopReply('T5'));
    protocolError(() => parseStopReply('S05thread:01;'));
    protocolError(() => parseStopReply('T05nocolon;'));
    protocolError(() => parseStopReply('T05watch:zz;'));
    protocolError(() => parseStopReply('T05thread:q;'));
    protocolError(() => parseStopReply('W'));
    protocolError(() => parseStopReply('W00;pid:1'));
    protocolError(() => parseStopReply('OK'));
  });

  it('are told apart from every other reply the client reads', () => {
    for (const s of ['T05thread:01;', 'T02thread:p01.01;', 'S05', 'W00', 'X09', 'W00;process:1']) expect(isStopReply(s), s).toBe(true);
    // m/p/g data is hex; qOffsets starts Text=; QEMU's qSupported, qXfer, qC, vCont?, OK, Exx.
    for (const s of ['ea5be000f0', '', 'OK', 'E14', 'Text=0;Data=0', 'PacketSize=1000', 'l<?xml', 'QCp01.01', 'vCont;c;C;s;S', 'Sxx', 'O4f4b']) {
      expect(isStopReply(s), s).toBe(false);
    }
  });
});

describe('qSupported', () => {
  it('parses QEMU 7.2 reply', () => {
    const f = parseSupported('PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+');
    expect([...f]).toEqual([
      ['PacketSize', '1000'],
      ['qXfer:features:read', true],
      ['vContSupported', true],
      ['multiprocess', true],
    ]);
    expect(supportedPacketSize(f)).toBe(4096);
  });

  it('parses - and ? features, and an empty reply', () => {
    expect([...parseSupported('QStartNoAckMode+;swbreak-;qRelocInsn?')]).toEqual([
      ['QStartNoAckMode', true],
      ['swbreak', false],
      ['qRelocInsn', 'maybe'],
    ]);
    expect(parseSupported('').size).toBe(0);
    expect(supportedPacketSize(parseSupported(''))).toBeNull();
  });

  it('rejects malformed items and a PacketSize that is not hex', () => {
    protocolError(() => parseSupported('PacketSize=1000;bogus'));
    protocolError(() => supportedPacketSize(parseSupported('PacketSize=zz')));
  });
});

describe('qXfer chunks', () => {
  it("are 'm' (more follows) or 'l' (last), with binary data", () => {
    expect(parseXferChunk(ascii('l<target/>'))).toEqual({ data: ascii('<target/>'), last: true });
    expect(parseXferChunk(ascii('m<?xml'))).toEqual({ data: ascii('<?xml'), last: false });
    expect(parseXferChunk(ascii('l'))).toEqual({ data: new Uint8Array(0), last: true });
    expect(parseXferChunk(Uint8Array.of(0x6d, 0x00, 0xff))).toEqual({ data: Uint8Array.of(0x00, 0xff), last: false });
    protocolError(() => parseXferChunk(ascii('E00')));
    protocolError(() => parseXferChunk(new Uint8Array(0)));
  });
});

describe('monitor output and vCont?', () => {
  it('decodes O packets; OK is not one', () => {
    // QEMU: "monitor gva2gpa ..." gives O packets such as this one.
    expect(parseOutputPacket(`O${textToHex('gpa: 0x101000\r\n')}`)).toBe('gpa: 0x101000\r\n');
    expect(parseOutputPacket('OK')).toBeNull();
    expect(parseOutputPacket('E14')).toBeNull();
    protocolError(() => parseOutputPacket('O4'));
  });

  it('lists vCont actions', () => {
    expect([...parseVContActions('vCont;c;C;s;S')]).toEqual(['c', 'C', 's', 'S']);
    expect(parseVContActions('').size).toBe(0);
    protocolError(() => parseVContActions('OK'));
  });
});
