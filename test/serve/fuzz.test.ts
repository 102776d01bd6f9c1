/**
 * A fuzz of the JSON-RPC handler: whatever a client sends (malformed JSON, other JSON, requests
 * with wrong types, unknown methods, huge messages, batches, deep nesting), the handler answers
 * with well-formed JSON-RPC 2.0, never throws, and never reports an internal error.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, type PagewalkSession } from '../../src/api/index.js';
import { RpcHandler } from '../../src/serve/handler.js';
import { METHODS } from '../../src/serve/methods.js';
import type { RpcPeer } from '../../src/serve/peer.js';
import { RPC_ERROR } from '../../src/serve/rpc.js';

let session: PagewalkSession;
let handler: RpcHandler;
let small: RpcHandler;

/** A client that takes everything at once. */
const peer: RpcPeer = { open: true, send: () => undefined, push: async () => undefined };

const KNOWN_CODES = new Set<number>(Object.values(RPC_ERROR).filter((c) => c !== RPC_ERROR.INTERNAL_ERROR));

interface Answer {
  jsonrpc: string;
  id: unknown;
  result?: unknown;
  error?: { code: number; message: string; data: { code: string } };
}

/** Checks one answer's form; returns it. */
function wellFormed(a: unknown): Answer {
  expect(typeof a === 'object' && a !== null && !Array.isArray(a)).toBe(true);
  const x = a as Answer;
  expect(x.jsonrpc).toBe('2.0');
  expect(x.id === null || typeof x.id === 'string' || typeof x.id === 'number').toBe(true);
  expect('result' in x !== 'error' in x).toBe(true);
  if (x.error) {
    expect(Number.isInteger(x.error.code)).toBe(true);
    expect(KNOWN_CODES.has(x.error.code), `error code ${x.error.code}: ${x.error.message}`).toBe(true);
    expect(typeof x.error.message).toBe('string');
    expect(x.error.message.length).toBeGreaterThan(0);
    expect(x.error.data.code).toMatch(/^E_[A-Z_]+$/);
  }
  return x;
}

/** Every answer in a handled text (a batch answers with an array). */
async function answers(h: RpcHandler, text: string): Promise<Answer[]> {
  const out = await h.handle(text, peer);
  if (out === null) return [];
  const v = JSON.parse(out) as unknown;
  if (Array.isArray(v)) {
    expect(v.length).toBeGreaterThan(0);
    return v.map(wellFormed);
  }
  return [wellFormed(v)];
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const METHOD_NAMES = Object.keys(METHODS);
const PARAM_NAMES = ['va', 'access', 'user', 'cr3', 'from', 'to', 'stream', 'chunk', 'against', 'pa', 'errorCode', 'cr2', 'rip', 'text', 'tables', 'name', 'value', 'bytes'];

/** Values that look like what the methods take, and what they do not. */
const paramValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('0x0', '0xffffffff80000000', '0xffff800000000000', '18446744073709551615', '0x10000000000000000', '-1', 'kmain', 'rax', 'exec', '0x'),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((b) => `0x${b.toString(16)}`),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.array(fc.constantFrom('0x1000', '0xffffffff80001234', 7, null), { maxLength: 5 }),
);

const params = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 2 }),
  fc.dictionary(fc.oneof(fc.constantFrom(...PARAM_NAMES), fc.string({ maxLength: 10 })), paramValue, { maxKeys: 5 }),
);

const request = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('2.0'), fc.constant('1.0'), fc.integer(), fc.constant(null)),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null), fc.double(), fc.object({ maxDepth: 1 }), fc.boolean()),
    method: fc.oneof(fc.constantFrom(...METHOD_NAMES), fc.constantFrom(...METHOD_NAMES), fc.string({ maxLength: 20 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty'), fc.integer()),
    params,
  },
  { requiredKeys: [] },
);

beforeAll(async () => {
  session = await attach({ example: true });
  handler = new RpcHandler(session);
  small = new RpcHandler(session, { limits: { maxMessageChars: 4096, maxBatch: 8, maxItems: 3 } });
});

afterAll(async () => {
  await session.close();
});

describe('the JSON-RPC handler under fuzzing', () => {
  it('answers any text with a parse error or a JSON-RPC answer, never a throw', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constantFrom('', '{', '[', '{"jsonrpc":', 'null', '"', '\u0000', '[]', '[[]]', '{}')), async (text) => {
        const got = await answers(handler, text);
        if (!isJson(text)) {
          expect(got).toHaveLength(1);
          expect(got[0]!.error?.code).toBe(RPC_ERROR.PARSE_ERROR);
          expect(got[0]!.id).toBeNull();
        }
      }),
      { numRuns: 400 },
    );
  });

  it('answers JSON that is not a request with invalid-request errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), async (v) => {
        const text = JSON.stringify(v);
        const got = await answers(handler, text);
        if (!Array.isArray(v)) {
          expect(got).toHaveLength(1);
          expect(got[0]!.error?.code).toBe(RPC_ERROR.INVALID_REQUEST);
        } else if (v.length === 0) {
          expect(got).toHaveLength(1);
          expect(got[0]!.error?.code).toBe(RPC_ERROR.INVALID_REQUEST);
        } else {
          // A batch of non-requests: one invalid-request error per element.
          expect(got).toHaveLength(v.length);
          for (const a of got) expect(a.error?.code).toBe(RPC_ERROR.INVALID_REQUEST);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers requests of every shape, with wrong types and unknown methods, well-formed and without internal errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(request, fc.array(request, { minLength: 1, maxLength: 4 })), async (r) => {
        const text = JSON.stringify(r);
        const got = await answers(handler, text);
        const sent = JSON.parse(text) as unknown;
        if (Array.isArray(sent)) return;
        const one = sent as Record<string, unknown>;
        const envelope =
          one.jsonrpc === '2.0' &&
          typeof one.method === 'string' &&
          one.method.length >= 1 &&
          one.method.length <= 64 &&
          (one.params === undefined || (typeof one.params === 'object' && one.params !== null));
        const validId = one.id === null || typeof one.id === 'number' || typeof one.id === 'string';
        if (!envelope || ('id' in one && !validId)) {
          // Not a request: an invalid-request error, answered even without a usable id.
          expect(got).toHaveLength(1);
          expect(got[0]!.error?.code).toBe(RPC_ERROR.INVALID_REQUEST);
          return;
        }
        if (!('id' in one)) {
          // A notification: never answered, whatever it asked.
          expect(got).toHaveLength(0);
          return;
        }
        if (!METHOD_NAMES.includes(one.method as string)) expect(got[0]!.error?.code).toBe(RPC_ERROR.METHOD_NOT_FOUND);
        if ((one.method === 'writeRegister' || one.method === 'writePhysical') && got[0]!.error) {
          // Writes are refused (or their parameters rejected first): never carried out.
          expect([RPC_ERROR.WRITE_REFUSED, RPC_ERROR.INVALID_PARAMS]).toContain(got[0]!.error.code);
        }
        if (one.method === 'writeRegister' || one.method === 'writePhysical') expect(got[0]!.error).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });

  it('refuses huge messages, batches and parameters with JSON-RPC errors', async () => {
    const huge = await answers(small, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'regs', params: { pad: 'x'.repeat(5000) } }));
    expect(huge[0]!.error).toMatchObject({ code: RPC_ERROR.INVALID_REQUEST, data: { code: 'E_REQUEST_TOO_LARGE' } });
    const batch = await answers(small, JSON.stringify(Array.from({ length: 9 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'regs' }))));
    expect(batch[0]!.error).toMatchObject({ code: RPC_ERROR.INVALID_REQUEST, data: { code: 'E_REQUEST_TOO_LARGE' } });
    const vas = await answers(handler, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'walk', params: { va: Array.from({ length: 5000 }, () => '0x1000') } }));
    expect(vas[0]!.error?.code).toBe(RPC_ERROR.INVALID_PARAMS);
    const longText = await answers(handler, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'walk', params: { va: 'k'.repeat(100_000) } }));
    expect(longText[0]!.error?.code).toBe(RPC_ERROR.INVALID_PARAMS);
    const deep = await answers(handler, '['.repeat(200_000) + ']'.repeat(200_000));
    expect(deep[0]!.error?.code).toBeOneOf([RPC_ERROR.PARSE_ERROR, RPC_ERROR.INVALID_REQUEST]);
    const tooMany = await answers(small, JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'map', params: { stream: false } }));
    expect(tooMany[0]!.error).toMatchObject({ code: RPC_ERROR.TOO_LARGE, data: { code: 'E_TOO_LARGE' } });
    const sixteen = await answers(handler, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'explainLog', params: { text: 'v'.repeat((16 << 20) + 1) } }));
    expect(sixteen[0]!.error).toMatchObject({ code: RPC_ERROR.INVALID_REQUEST, data: { code: 'E_REQUEST_TOO_LARGE' } });
    const bigNumber = await answers(handler, JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'walk', params: { va: 2 ** 64 } }));
    expect(bigNumber[0]!.error?.code).toBe(RPC_ERROR.INVALID_PARAMS);
  });

  it('answers nothing to notifications, even failing ones, and answers a mixed batch in part', async () => {
    expect(await handler.handle(JSON.stringify({ jsonrpc: '2.0', method: 'regs' }), peer)).toBeNull();
    expect(await handler.handle(JSON.stringify({ jsonrpc: '2.0', method: 'nope' }), peer)).toBeNull();
    expect(await handler.handle(JSON.stringify({ jsonrpc: '2.0', method: 'walk', params: { va: [] } }), peer)).toBeNull();
    const got = await answers(handler, JSON.stringify([{ jsonrpc: '2.0', method: 'regs' }, { jsonrpc: '2.0', id: 'a', method: 'regs' }, 5]));
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ id: 'a', result: { mode: '4-level' } });
    expect(got[1]).toMatchObject({ id: null, error: { code: RPC_ERROR.INVALID_REQUEST } });
  });
});
