/**
 * QMP framing: endpoints, the line decoder (every input also cut at every offset and in random
 * pieces), malformed and overlong input, and the encoder's exact 64-bit integers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QmpError } from '../../src/qmp/errors.js';
import {
  QmpDecoder,
  decodeLine,
  describeEndpoint,
  encodeMessage,
  isLocalEndpoint,
  parseEndpoint,
  type DecoderOutput,
} from '../../src/qmp/transport.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** What a decoder makes of `input` fed in pieces cut at `cuts`. */
function decodeCut(input: Uint8Array, cuts: number[], max?: number): DecoderOutput[] {
  const d = new QmpDecoder(max);
  const out: DecoderOutput[] = [];
  let at = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < input.length).sort((a, b) => a - b), input.length]) {
    out.push(...d.feed(input.subarray(at, c)));
    at = c;
  }
  return out;
}

/** A compact view of decoder output for comparisons. */
function summary(out: DecoderOutput[]): string[] {
  return out.map((o) => (o.kind === 'message' ? `msg ${JSON.stringify(o.message)}` : `err ${o.error.code} ${o.error.message}`));
}

/** The greeting, a reply and an event exactly as QEMU 7.2 sends them (CRLF line ends). */
const STREAM =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n' +
  '{"return": {}, "id": "pw-1"}\r\n' +
  '{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"}\r\n';

describe('QmpDecoder', () => {
  it('decodes CRLF-separated objects', () => {
    expect(summary(new QmpDecoder().feed(bytes(STREAM)))).toEqual([
      'msg {"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},"package":"Debian 1:7.2+dfsg-7+deb12u18+b3"},"capabilities":["oob"]}}',
      'msg {"return":{},"id":"pw-1"}',
      'msg {"timestamp":{"seconds":1700000000,"microseconds":123456},"event":"STOP"}',
    ]);
  });

  it('gives the same result with the input cut at every offset (and at every pair of offsets)', () => {
    const input = bytes(STREAM);
    const whole = summary(decodeCut(input, []));
    for (let i = 1; i < input.length; i++) {
      expect(summary(decodeCut(input, [i])), `cut at ${i}`).toEqual(whole);
    }
    for (let i = 1; i < input.length; i += 7) {
      for (let j = i + 1; j < input.length; j += 5) expect(summary(decodeCut(input, [i, j]))).toEqual(whole);
    }
  });

  it('keeps a UTF-8 character split across reads', () => {
    const input = bytes('{"return": "café ☕"}\n');
    for (let i = 1; i < input.length; i++) {
      expect(summary(decodeCut(input, [i]))).toEqual(['msg {"return":"café ☕"}']);
    }
  });

  it('accepts LF-only lines and skips blank lines', () => {
    expect(summary(new QmpDecoder().feed(bytes('\n\r\n  \n{"return": 1}\n\n{"return": 2}\r\n')))).toEqual(['msg {"return":1}', 'msg {"return":2}']);
  });

  it('keeps a partial line until its end arrives', () => {
    const d = new QmpDecoder();
    expect(d.feed(bytes('{"return": '))).toEqual([]);
    expect(d.pendingBytes).toBe(11);
    expect(summary(d.feed(bytes('{}}\r\n')))).toEqual(['msg {"return":{}}']);
    expect(d.pendingBytes).toBe(0);
  });

  it('reports malformed JSON and non-objects with E_PROTOCOL, and goes on with the next line', () => {
    const out = summary(new QmpDecoder().feed(bytes('{"return": }\r\n[1,2]\r\n{"return": 3}\r\n')));
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(/^err E_PROTOCOL QMP sent a line that is not a JSON object \(invalid JSON\): "\{\\"return\\": \}"$/);
    expect(out[1]).toMatch(/^err E_PROTOCOL QMP sent a line that is not a JSON object \(it does not start with "\{"\): "\[1,2\]"$/);
    expect(out[2]).toBe('msg {"return":3}');
  });

  it('reports a line that does not start with "{" at once, without waiting for its end', () => {
    const d = new QmpDecoder();
    const first = d.feed(bytes('+$T02thread:01;#04'));
    expect(summary(first)).toEqual(['err E_PROTOCOL QMP sent a line that is not a JSON object (it does not start with "{"): "+$T02thread:01;#04"']);
    expect(d.feed(bytes('more junk'))).toEqual([]);
    expect(summary(d.feed(bytes(' still\n{"return": 1}\n')))).toEqual(['msg {"return":1}']);
  });

  it('drops an overlong line with an error and resynchronises at the next line end, however it is cut', () => {
    const input = bytes(`{"return": "${'x'.repeat(100)}"}\n{"return": 1}\n`);
    const expected = ['err E_PROTOCOL QMP sent a line longer than 64 bytes; it was dropped', 'msg {"return":1}'];
    for (let i = 0; i < input.length; i++) expect(summary(decodeCut(input, [i], 64)), `cut at ${i}`).toEqual(expected);
    // a line of exactly the maximum passes
    const exact = `{"return": "${'y'.repeat(64 - 14)}"}`;
    expect(exact.length).toBe(64);
    expect(summary(new QmpDecoder(64).feed(bytes(`${exact}\n`)))).toEqual([`msg ${JSON.stringify({ return: 'y'.repeat(50) })}`]);
  });

  it('never throws, whatever the bytes and however they are cut (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 }), (input, cuts) => {
        const out = decodeCut(input, cuts, 128);
        for (const o of out) {
          if (o.kind === 'error') expect(o.error).toBeInstanceOf(QmpError);
          else expect(typeof o.message).toBe('object');
        }
      }),
    );
  });

  it('decodes valid streams the same whatever the cuts (property)', () => {
    const message = fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.oneof(fc.integer(), fc.string(), fc.boolean()), { maxKeys: 4 });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 5 }), fc.array(fc.nat(400), { maxLength: 6 }), fc.boolean(), (messages, cuts, crlf) => {
        const input = bytes(messages.map((m) => JSON.stringify(m) + (crlf ? '\r\n' : '\n')).join(''));
        expect(decodeCut(input, cuts)).toEqual(messages.map((m) => ({ kind: 'message', message: m })));
      }),
    );
  });
});

describe('decodeLine', () => {
  it('accepts an object with a CR or blanks around it', () => {
    expect(decodeLine(' {"event": "RESUME"}\r')).toEqual({ kind: 'message', message: { event: 'RESUME' } });
    expect(decodeLine('null')).toMatchObject({ kind: 'error', error: { code: 'E_PROTOCOL' } });
    expect(decodeLine('"text"')).toMatchObject({ kind: 'error', error: { code: 'E_PROTOCOL' } });
  });
});

describe('encodeMessage', () => {
  it('writes bigints as exact integers and leaves undefined fields out', () => {
    expect(encodeMessage({ execute: 'memsave', arguments: { val: -2146426880n, size: 64, filename: '/tmp/m', cpu: undefined }, id: 'pw-1' })).toBe(
      '{"execute":"memsave","arguments":{"val":-2146426880,"size":64,"filename":"/tmp/m"},"id":"pw-1"}',
    );
    expect(encodeMessage({ val: 0x7fffffffffffffffn, list: [1, 'a', null, true, -9223372036854775808n] })).toBe(
      '{"val":9223372036854775807,"list":[1,"a",null,true,-9223372036854775808]}',
    );
    expect(encodeMessage({ s: 'quote " and \\ and \n' })).toBe('{"s":"quote \\" and \\\\ and \\n"}');
    expect(() => encodeMessage({ v: Number.NaN })).toThrow(RangeError);
  });
});

describe('endpoints', () => {
  it('reads paths, HOST:PORT and the QEMU-style prefixes', () => {
    expect(parseEndpoint('/tmp/qmp.sock')).toEqual({ path: '/tmp/qmp.sock' });
    expect(parseEndpoint('qmp.sock')).toEqual({ path: 'qmp.sock' });
    expect(parseEndpoint('unix:/run/q:1.sock')).toEqual({ path: '/run/q:1.sock' });
    expect(parseEndpoint('./dir/a:4444')).toEqual({ path: './dir/a:4444' });
    expect(parseEndpoint('127.0.0.1:4444')).toEqual({ host: '127.0.0.1', port: 4444 });
    expect(parseEndpoint('tcp:localhost:4444')).toEqual({ host: 'localhost', port: 4444 });
    expect(parseEndpoint('[::1]:4444')).toEqual({ host: '::1', port: 4444 });
    expect(() => parseEndpoint('127.0.0.1:70000')).toThrow(expect.objectContaining({ code: 'E_CONNECT', message: expect.stringMatching(/70000 is not in 1\.\.65535/) }));
    expect(() => parseEndpoint('tcp:nowhere')).toThrow(/expected tcp:HOST:PORT/);
    expect(() => parseEndpoint(' ')).toThrow(/empty QMP endpoint/);
  });

  it('describes endpoints and guesses whether QEMU is on this host', () => {
    expect(describeEndpoint({ host: '::1', port: 4444 })).toBe('[::1]:4444');
    expect(describeEndpoint({ host: '127.0.0.1', port: 4444 })).toBe('127.0.0.1:4444');
    expect(isLocalEndpoint({ path: '/tmp/q' })).toBe(true);
    expect(isLocalEndpoint({ host: '127.0.0.2', port: 1 })).toBe(true);
    expect(isLocalEndpoint({ host: 'localhost', port: 1 })).toBe(true);
    expect(isLocalEndpoint({ host: '::1', port: 1 })).toBe(true);
    expect(isLocalEndpoint({ host: '10.0.0.5', port: 1 })).toBe(false);
  });
});
