/**
 * The server's small parts on their own: --ws addresses and what counts as loopback, who may
 * connect (token by query or header, origins), the parameter specs' messages, and JSON-RPC parsing.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isLoopback, parseListenAddress } from '../../src/serve/address.js';
import { refusalOf, tokenOf } from '../../src/serve/auth.js';
import { METHODS } from '../../src/serve/methods.js';
import { checkParams, ParamsError } from '../../src/serve/params.js';
import { parseMessage, RPC_ERROR } from '../../src/serve/rpc.js';

const LIMITS = { maxMessageChars: 1000, maxBatch: 3, maxMethodChars: 16 };

function request(url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

describe('--ws addresses', () => {
  it('parses HOST:PORT, [IPv6]:PORT and a bare port', () => {
    expect(parseListenAddress('127.0.0.1:8765')).toEqual({ host: '127.0.0.1', port: 8765 });
    expect(parseListenAddress('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListenAddress('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseListenAddress('9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListenAddress(':9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListenAddress('localhost:1')).toEqual({ host: 'localhost', port: 1 });
  });

  it('refuses what is not one, saying what would be right', () => {
    for (const bad of ['', 'host', 'host:', 'host:65536', '[nothex]:1', '1.2.3.4:5:6', 'a b:1']) {
      expect(() => parseListenAddress(bad), bad).toThrow(/expected HOST:PORT such as 127\.0\.0\.1:8765|is not an IPv6 address/);
    }
  });

  it('counts 127/8, ::1 and localhost as this machine only', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('who may connect', () => {
  const policy = { token: 's3cret-token', origins: ['http://localhost:5173'] };

  it('takes the token from the query, else a bearer header', () => {
    expect(tokenOf(request('/?token=abc'))).toBe('abc');
    expect(tokenOf(request('/', { authorization: 'Bearer xyz' }))).toBe('xyz');
    expect(tokenOf(request('/?other=1', { authorization: 'Basic xyz' }))).toBeNull();
  });

  it('refuses a missing or wrong token with 401, whatever the origin', () => {
    expect(refusalOf(request('/'), policy)).toMatchObject({ status: 401, reason: expect.stringContaining('token is required') });
    expect(refusalOf(request('/?token=nope'), policy)).toEqual({ status: 401, reason: 'wrong token' });
    expect(refusalOf(request('/?token=s3cret-token', { origin: 'https://evil.example' }), policy)).toBeNull();
  });

  it('without a token, refuses browser pages from origins not allowed (403)', () => {
    const open = { token: null, origins: ['http://localhost:5173'] };
    expect(refusalOf(request('/'), open)).toBeNull();
    expect(refusalOf(request('/', { origin: 'http://localhost:5173' }), open)).toBeNull();
    expect(refusalOf(request('/', { origin: 'https://evil.example' }), open)).toMatchObject({ status: 403 });
  });
});

describe('parameters', () => {
  it('takes each method\'s members by name, and names the one that is wrong', () => {
    expect(checkParams('walk', METHODS.walk!.params, { va: '0x1000', access: 'exec' })).toEqual({ va: '0x1000', access: 'exec' });
    expect(checkParams('regs', METHODS.regs!.params, undefined)).toEqual({});
    const cases: [string, unknown, RegExp][] = [
      ['walk', {}, /"va" is required/],
      ['walk', ['0x1000'], /pass parameters by name/],
      ['walk', { va: true }, /"va": expected an address/],
      ['walk', { va: -1 }, /not a whole number from 0 to 2\^53/],
      ['walk', { va: '0x1', access: 'jump' }, /expected one of read, write, exec/],
      ['walk', { va: '0x1', nope: 1 }, /unknown parameter "nope" \(known: va, access, user, cr3\)/],
      ['map', { chunk: 0 }, /"chunk": expected a whole number from 1 to 4096/],
      ['regs', { x: 1 }, /it takes none/],
      ['writePhysical', { pa: 0, bytes: 'xyz' }, /does not match/],
    ];
    for (const [method, params, why] of cases) {
      expect(() => checkParams(method, METHODS[method]!.params, params), `${method} ${JSON.stringify(params)}`).toThrow(ParamsError);
      expect(() => checkParams(method, METHODS[method]!.params, params)).toThrow(why);
    }
    expect(() => checkParams('walk', METHODS.walk!.params, JSON.parse('{"__proto__": 1, "va": 1}'))).toThrow(/unknown parameter "__proto__"/);
  });
});

describe('JSON-RPC messages', () => {
  it('tells single requests, notifications, batches and the invalid apart', () => {
    expect(parseMessage('{"jsonrpc":"2.0","id":1,"method":"regs"}', LIMITS)).toEqual({ kind: 'single', entry: { request: { id: 1, method: 'regs', params: undefined } } });
    expect(parseMessage('{"jsonrpc":"2.0","method":"regs","params":{}}', LIMITS)).toEqual({ kind: 'single', entry: { request: { method: 'regs', params: {} } } });
    const batch = parseMessage('[{"jsonrpc":"2.0","id":"a","method":"regs"},{"id":2}]', LIMITS);
    expect(batch.kind).toBe('batch');
    expect(batch.kind === 'batch' && batch.entries[1]).toEqual({
      invalid: { jsonrpc: '2.0', id: 2, error: { code: RPC_ERROR.INVALID_REQUEST, message: 'invalid request: "jsonrpc" must be "2.0"', data: { code: 'E_INVALID_REQUEST' } } },
    });
  });

  it('answers the whole message for parse errors, empty or long batches and huge texts', () => {
    const code = (text: string) => {
      const m = parseMessage(text, LIMITS);
      return m.kind === 'error' ? [m.response.id, 'error' in m.response ? m.response.error.code : 0, 'error' in m.response ? m.response.error.data.code : ''] : m.kind;
    };
    expect(code('{')).toEqual([null, RPC_ERROR.PARSE_ERROR, 'E_PARSE']);
    expect(code('[]')).toEqual([null, RPC_ERROR.INVALID_REQUEST, 'E_INVALID_REQUEST']);
    expect(code('[1,2,3,4]')).toEqual([null, RPC_ERROR.INVALID_REQUEST, 'E_REQUEST_TOO_LARGE']);
    expect(code(' '.repeat(1001))).toEqual([null, RPC_ERROR.INVALID_REQUEST, 'E_REQUEST_TOO_LARGE']);
    const long = parseMessage(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'm'.repeat(17) }), LIMITS);
    expect(long).toMatchObject({ kind: 'single', entry: { invalid: { id: 7, error: { code: RPC_ERROR.INVALID_REQUEST } } } });
    const badId = parseMessage('{"jsonrpc":"2.0","id":{"x":1},"method":"regs"}', LIMITS);
    expect(badId).toMatchObject({ kind: 'single', entry: { invalid: { id: null, error: { message: 'invalid request: "id" must be a string, a number or null' } } } });
  });
});
