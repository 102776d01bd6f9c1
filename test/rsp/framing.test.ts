/**
 * RSP framing: encoding fixtures (checksums computed by hand, and as QEMU sends them), and the
 * decoder fed every fixture whole, cut at every offset, byte by byte, and with malformed,
 * truncated and random input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PacketDecoder, checksum, encodeNotification, encodePacket, escapePayload, payloadBytes, type Frame } from '../../src/rsp/framing.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Frames with payloads as latin1 text, for readable expectations. */
type Readable = { type: string; payload?: string; code?: string; message?: string };
function readable(frames: readonly Frame[]): Readable[] {
  return frames.map((f) => ('payload' in f ? { type: f.type, payload: text(f.payload) } : f.type === 'error' ? { type: 'error', code: f.code } : { type: f.type }));
}

/**
 * Decodes `bytes` whole, then again cut at every offset, then byte by byte, and checks that every
 * way gives the same frames; returns them.
 */
function decodeEveryWay(bytes: Uint8Array, maxPacketSize?: number): Readable[] {
  const whole = readable(new PacketDecoder({ maxPacketSize }).feed(bytes));
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new PacketDecoder({ maxPacketSize });
    const split = readable([...d.feed(bytes.subarray(0, cut)), ...d.feed(bytes.subarray(cut))]);
    expect(split, `cut at ${cut}`).toEqual(whole);
  }
  const d = new PacketDecoder({ maxPacketSize });
  const bytewise = readable([...bytes].flatMap((b) => d.feed(Uint8Array.of(b))));
  expect(bytewise).toEqual(whole);
  return whole;
}

describe('encodePacket', () => {
  it('frames payloads with a two-digit checksum', () => {
    expect(encodePacket('OK')).toEqual(hex('244f4b233961')); // $OK#9a
    expect(encodePacket('m0,4')).toEqual(ascii('$m0,4#fd'));
    expect(encodePacket('T02thread:01;')).toEqual(ascii('$T02thread:01;#04')); // as QEMU sends it on connect
    expect(encodePacket('qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+')).toEqual(
      ascii('$qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+#9b'),
    );
    expect(encodePacket('')).toEqual(ascii('$#00'));
  });

  it('escapes $ # } * as } and the byte XOR 0x20, and sums the escaped bytes', () => {
    expect(encodePacket(ascii('#$}*'))).toEqual(hex('24 7d03 7d04 7d5d 7d0a 23 3632'));
    expect(escapePayload('a$b')).toEqual(hex('61 7d04 62'));
    expect(checksum(hex('7d037d047d5d7d0a'))).toBe(0x62);
  });

  it('run-length encodes on request, never with a count that would read as # or $', () => {
    expect(encodePacket('0000', { runLength: true })).toEqual(ascii('$0* #7a'));
    expect(encodePacket('XXXXXX', { runLength: true })).toEqual(ascii('$X*"#a4'));
    expect(encodePacket('000', { runLength: true })).toEqual(ascii('$000#90')); // too short to pay off
    // 8 equal bytes = 1 + 7 more; 7 would be '$', so 1 + 5 (*") and 2 plain.
    expect(text(escapePayload('aaaaaaaa', { runLength: true }))).toBe('a*"aa');
    expect(text(escapePayload('a'.repeat(100), { runLength: true }))).toBe('a*~aa');
  });

  it('frames notifications with %', () => {
    expect(encodeNotification('Stop:T05thread:01;')).toEqual(ascii('%Stop:T05thread:01;#e7'));
  });

  it('takes strings as latin1 and refuses characters above U+00FF', () => {
    expect(payloadBytes('\xff\x00')).toEqual(Uint8Array.of(0xff, 0));
    expect(() => encodePacket('\u0100')).toThrow(RangeError);
  });
});

describe('PacketDecoder', () => {
  it('decodes packets, acks, nacks and interrupts, however the input is cut', () => {
    // "+$T05thread:p01.01;#06" is what QEMU answers the first client queued behind another.
    const input = ascii('+$T05thread:p01.01;#06-\x03$OK#9a+$#00');
    expect(decodeEveryWay(input)).toEqual([
      { type: 'ack' },
      { type: 'packet', payload: 'T05thread:p01.01;' },
      { type: 'nack' },
      { type: 'interrupt' },
      { type: 'packet', payload: 'OK' },
      { type: 'ack' },
      { type: 'packet', payload: '' },
    ]);
  });

  it('unescapes and expands run lengths', () => {
    expect(decodeEveryWay(hex('24 7d03 7d04 7d5d 7d0a 23 3632'))).toEqual([{ type: 'packet', payload: '#$}*' }]);
    expect(decodeEveryWay(ascii('$0* #7a'))).toEqual([{ type: 'packet', payload: '0000' }]);
    expect(decodeEveryWay(ascii('$X*"#a4'))).toEqual([{ type: 'packet', payload: 'XXXXXX' }]);
    // A run repeats the byte as decoded: an escaped '}' then '*' and ' ' (3 more).
    expect(decodeEveryWay(ascii('$}]* #24'))).toEqual([{ type: 'packet', payload: '}}}}' }]);
    // Upper-case checksum digits are accepted.
    expect(decodeEveryWay(ascii('$E14#AA'))).toEqual([{ type: 'packet', payload: 'E14' }]);
  });

  it('decodes notifications', () => {
    expect(decodeEveryWay(ascii('%Stop:T05thread:01;#e7'))).toEqual([{ type: 'notification', payload: 'Stop:T05thread:01;' }]);
  });

  it('drops a packet with a wrong checksum (E_CHECKSUM) and decodes the next', () => {
    const frames = decodeEveryWay(ascii('$OK#9b$W00#b7'));
    expect(frames).toEqual([{ type: 'error', code: 'E_CHECKSUM' }, { type: 'packet', payload: 'W00' }]);
    const d = new PacketDecoder();
    const [err] = d.feed(ascii('$OK#9b'));
    expect(err).toMatchObject({ type: 'error', code: 'E_CHECKSUM', message: expect.stringContaining('says 9b, its bytes sum to 9a') });
  });

  it('drops a packet whose checksum is not hex, and reads the offending byte as the next frame', () => {
    expect(decodeEveryWay(ascii('$OK#9+$OK#9a'))).toEqual([{ type: 'error', code: 'E_CHECKSUM' }, { type: 'ack' }, { type: 'packet', payload: 'OK' }]);
    expect(decodeEveryWay(ascii('$OK#$OK#9a'))).toEqual([{ type: 'error', code: 'E_CHECKSUM' }, { type: 'packet', payload: 'OK' }]);
  });

  it('reports one E_FRAMING per run of junk between packets', () => {
    expect(decodeEveryWay(ascii('garbage\r\n$OK#9a!!$OK#9a'))).toEqual([
      { type: 'error', code: 'E_FRAMING' },
      { type: 'packet', payload: 'OK' },
      { type: 'error', code: 'E_FRAMING' },
      { type: 'packet', payload: 'OK' },
    ]);
    const [err] = new PacketDecoder().feed(ascii('g'));
    expect(err).toMatchObject({ message: "unexpected byte 0x67 'g' between packets" });
  });

  it('restarts on a $ inside a packet (E_FRAMING for the cut one)', () => {
    expect(decodeEveryWay(ascii('$m100$OK#9a'))).toEqual([{ type: 'error', code: 'E_FRAMING' }, { type: 'packet', payload: 'OK' }]);
  });

  it('rejects a packet ending inside an escape or a run length, and a run length with nothing before it', () => {
    // "a}" + '#': checksum of 61 7d = de.
    expect(decodeEveryWay(ascii('$a}#de$OK#9a'))).toEqual([{ type: 'error', code: 'E_FRAMING' }, { type: 'packet', payload: 'OK' }]);
    expect(decodeEveryWay(ascii('$a*#8b'))).toEqual([{ type: 'error', code: 'E_FRAMING' }]);
    expect(decodeEveryWay(ascii('$* #4a'))).toEqual([{ type: 'error', code: 'E_FRAMING' }]);
    // A count below ' ' is not a count.
    expect(decodeEveryWay(hex('24 61 2a 01 23 3863'))).toEqual([{ type: 'error', code: 'E_FRAMING' }]);
  });

  it('drops packets over the maximum size (E_FRAMING), run-length expansion included, and carries on', () => {
    expect(decodeEveryWay(ascii('$12345#ff$1234#ca'), 4)).toEqual([{ type: 'error', code: 'E_FRAMING' }, { type: 'packet', payload: '1234' }]);
    expect(decodeEveryWay(ascii('$0* #7a'), 3)).toEqual([{ type: 'error', code: 'E_FRAMING' }]);
    const [err] = new PacketDecoder({ maxPacketSize: 4 }).feed(ascii('$12345#ff'));
    expect(err).toMatchObject({ message: 'the packet is longer than the maximum of 4 bytes; dropped' });
  });

  it('keeps a partial packet and says so', () => {
    const d = new PacketDecoder();
    expect(d.feed(ascii('$O'))).toEqual([]);
    expect(d.idle).toBe(false);
    expect(readable(d.feed(ascii('K#9a')))).toEqual([{ type: 'packet', payload: 'OK' }]);
    expect(d.idle).toBe(true);
    d.feed(ascii('$O'));
    d.reset();
    expect(readable(d.feed(ascii('$W00#b7')))).toEqual([{ type: 'packet', payload: 'W00' }]);
  });

  it('decodes 0x800-byte memory replies (4096 hex digits), as QEMU sends them', () => {
    const payload = Array.from({ length: 0x800 }, (_, i) => (i & 0xff).toString(16).padStart(2, '0')).join('');
    const frames = new PacketDecoder().feed(encodePacket(payload));
    expect(readable(frames)).toEqual([{ type: 'packet', payload }]);
  });

  it('round-trips any payload, escaped and run-length encoded, cut anywhere', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.nat(), (payload, runLength, cutSeed) => {
        const bytes = encodePacket(payload, { runLength });
        const cut = cutSeed % (bytes.length + 1);
        const d = new PacketDecoder();
        const frames = [...d.feed(bytes.subarray(0, cut)), ...d.feed(bytes.subarray(cut))];
        expect(frames).toEqual([{ type: 'packet', payload }]);
      }),
    );
  });

  it('never throws on random input, gives the same frames however it is cut, and never stalls', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.uint8Array({ maxLength: 40 }), (junk, cutSeed, payload) => {
        const valid = encodePacket(payload);
        const input = new Uint8Array([...junk, ...valid]);
        const whole = new PacketDecoder({ maxPacketSize: 64 }).feed(input);
        const cut = cutSeed % (input.length + 1);
        const d = new PacketDecoder({ maxPacketSize: 64 });
        expect([...d.feed(input.subarray(0, cut)), ...d.feed(input.subarray(cut))]).toEqual(whole);
        // Whatever the junk left half-done, the packet after it comes through.
        expect(whole.at(-1)).toEqual({ type: 'packet', payload });
        for (const f of whole) {
          if (f.type === 'error') expect(['E_CHECKSUM', 'E_FRAMING']).toContain(f.code);
        }
      }),
    );
  });

  it('reports random truncations of valid traffic as errors, never as wrong packets', () => {
    fc.assert(
      // No 0x00 bytes: losing one leaves the modulo-256 checksum unchanged, a weakness of RSP itself.
      fc.property(fc.array(fc.uint8Array({ min: 1, maxLength: 30 }), { minLength: 1, maxLength: 5 }), fc.nat(), (payloads, dropSeed) => {
        const stream = payloads.flatMap((p) => [...encodePacket(p)]);
        const drop = dropSeed % stream.length;
        stream.splice(drop, 1); // lose one byte somewhere
        const frames = new PacketDecoder().feed(Uint8Array.from(stream));
        const got = frames.filter((f): f is Extract<Frame, { type: 'packet' }> => f.type === 'packet').map((f) => f.payload);
        // Every packet that comes out is one that was sent (a lost byte cannot forge another)...
        for (const g of got) expect(payloads).toContainEqual(g);
        // ...and at most the one packet that lost a byte is missing.
        expect(got.length).toBeGreaterThanOrEqual(payloads.length - 1);
      }),
    );
  });
});
