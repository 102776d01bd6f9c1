/**
 * fast-check against the servers: random bytes, and random mixtures of well-formed and damaged
 * packets (memory, registers, breakpoints, stepping, running, monitor commands), in random
 * chunkings, never crash the emulator's RSP or QMP server, and each stays usable afterwards: a
 * new client connects, negotiates and gets answers. Commands that end the emulator (k, vKill,
 * quit) are left out, since ending is their point.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/qmp/client.js';
import { RspClient } from '../../src/rsp/client.js';
import { textToHex } from '../../src/rsp/codec.js';
import { encodePacket } from '../../src/rsp/framing.js';
import { CODE_VA, DATA_VA } from './fixtures.js';
import { RawQmp, RawRsp, serve, sleep, type Served } from './serverFixtures.js';

let s: Served;
const errors: unknown[] = [];
const onError = (e: unknown): void => void errors.push(e);

beforeAll(async () => {
  s = await serve();
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
});

afterAll(async () => {
  process.off('uncaughtException', onError);
  process.off('unhandledRejection', onError);
  await s.close();
});

const hex = (n: bigint | number): string => n.toString(16);
const address = fc.oneof(
  fc.constantFrom(CODE_VA, DATA_VA, DATA_VA + 0x18n, 0n, 0x100000n, 0xffff800000000000n, 0x800000000000n),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
const length = fc.oneof(fc.integer({ min: 0, max: 0x810 }), fc.constantFrom(0, 1, 8, 0x800, 0x801));

/** Payloads of every packet class the server handles (but the ones that end it). */
const payload = fc.oneof(
  fc.tuple(address, length).map(([a, n]) => `m${hex(a)},${hex(n)}`),
  fc.tuple(address, fc.uint8Array({ maxLength: 64 })).map(([a, b]) => `M${hex(a)},${hex(b.length)}:${Buffer.from(b).toString('hex')}`),
  fc.constantFrom('g', '?', 's', 'c', 'vCont;s:p1.1;c', 'vCont;c', 'vCont?', 'qC', 'qfThreadInfo', 'qsThreadInfo', 'qAttached', 'Hg0', 'Hc-1', 'D;1', 'D'),
  fc.constantFrom('qSupported:multiprocess+', 'qSupported', 'Qqemu.PhyMemMode:1', 'Qqemu.PhyMemMode:0', 'Qqemu.sstep=0', 'Qqemu.sstep=7', 'qqemu.sstep'),
  fc.tuple(fc.integer({ min: 0, max: 0x45 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([r, v]) => `P${hex(r)}=${v.toString(16).padStart(16, '0')}`),
  fc.integer({ min: 0, max: 0x45 }).map((r) => `p${hex(r)}`),
  fc.tuple(fc.constantFrom('Z', 'z'), fc.integer({ min: 0, max: 6 }), address, fc.integer({ min: 0, max: 16 })).map(([op, t, a, k]) => `${op}${t},${hex(a)},${hex(k)}`),
  fc.tuple(fc.constantFrom('target.xml', 'i386-64bit.xml', 'nope.xml'), fc.nat(9000), fc.nat(0x2000)).map(([x, o, n]) => `qXfer:features:read:${x}:${hex(o)},${hex(n)}`),
  fc.constantFrom('info registers', 'info tlb', 'info mem', 'info status', 'info cpus', 'xp /4gx 0x100000', 'x /2gx $rsp', 'gva2gpa 0', 'stop', 'cont', 'info', 'nonsense', 'xp /9q 1/0').map((c) => `qRcmd,${textToHex(c)}`),
  fc.string({ maxLength: 40 }).filter((t) => !/^(k|vKill)/.test(t) && !t.startsWith('qRcmd')),
);

/** One fragment of what a client might send. */
const fragment = fc.oneof(
  payload.map((p) => Buffer.from(encodePacket(p))),
  payload.map((p) => {
    // The same packet with a damaged checksum.
    const b = Buffer.from(encodePacket(p));
    b[b.length - 1] = 0x7a;
    return b;
  }),
  fc.constantFrom(Buffer.from('+'), Buffer.from('-'), Buffer.from([3]), Buffer.from('$'), Buffer.from('#00'), Buffer.from('}'), Buffer.from('*')),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
);

/** Writes `bytes` in `cuts` pieces. */
async function writeInPieces(write: (b: Uint8Array) => void, bytes: Buffer, cuts: number[]): Promise<void> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const p of [...points, bytes.length]) {
    if (p > at) write(bytes.subarray(at, p));
    at = p;
  }
}

/** A new client can connect, negotiate and be answered (a running guest is stopped by connecting). */
async function stillServes(): Promise<void> {
  const c = await RspClient.connect(s.gdb, { timeoutMs: 5000 });
  try {
    expect(await c.request('qC')).toMatch(/^QC(p01\.)?01$/);
    expect((await c.readRegisters()).get('cr3')).toBeTypeOf('bigint');
  } finally {
    await c.close();
  }
}

describe('the RSP server under fuzzing', () => {
  it('survives random bytes and stays usable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 6 }), async (bytes, cuts) => {
        const r = await RawRsp.connect(s.gdb);
        await writeInPieces((b) => r.write(b), Buffer.from(bytes), cuts);
        await sleep(2);
        r.close();
        await stillServes();
        expect(s.session.hasEnded).toBe(false);
      }),
      { numRuns: 40 },
    );
    expect(errors).toEqual([]);
  });

  it('survives random mixtures of packets, damaged packets, acks and interrupts', async () => {
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fragment, { minLength: 1, maxLength: 24 }), fc.array(fc.nat(), { maxLength: 8 }), async (fragments, cuts) => {
        const r = await RawRsp.connect(s.gdb);
        await writeInPieces((b) => r.write(b), Buffer.concat(fragments), cuts);
        await sleep(5);
        if (r.frames.some((f) => f.startsWith('$'))) answered++;
        r.close();
        await stillServes();
        expect(s.session.hasEnded).toBe(false);
      }),
      { numRuns: 60 },
    );
    expect(errors).toEqual([]);
    // The mixtures did reach the packet handlers, not only the framing.
    expect(answered).toBeGreaterThan(0);
  });
});

describe('the QMP server under fuzzing', () => {
  const command = fc.oneof(
    fc.constantFrom('query-status', 'stop', 'cont', 'system_reset', 'query-cpus-fast', 'query-version', 'qmp_capabilities', 'nope'),
    fc.string({ maxLength: 12 }).filter((c) => c !== 'quit'),
  );
  const args = fc.oneof(
    fc.constant(undefined),
    fc.record({ 'command-line': fc.constantFrom('info registers', 'info mem', 'xp /2gx 0', 'gva2gpa 1', 'nonsense', 'stop', 'cont') }),
    fc.record({ reboot: fc.constantFrom('reset', 'shutdown', 'x'), shutdown: fc.constantFrom('pause', 'poweroff', 'y') }, { requiredKeys: [] }),
    fc.record({ path: fc.string(), property: fc.string() }),
    fc.jsonValue(),
  );
  const line = fc.oneof(
    fc.tuple(command, args, fc.option(fc.jsonValue())).map(([c, a, id]) => JSON.stringify({ execute: c, ...(a === undefined ? {} : { arguments: a }), ...(id === null ? {} : { id }) })),
    fc.json(),
    fc.string({ maxLength: 80 }),
  );

  it('survives random lines and bytes and stays usable', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(line.map((l) => Buffer.from(`${l}\n`)), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))), { maxLength: 12 }), async (parts) => {
        // shutdown=poweroff would end the emulator on a shutdown request: keep the post-mortem action.
        s.session.setActions({ shutdown: 'pause' });
        const q = await RawQmp.connect(s.qmpPath);
        await q.waitLines(1);
        for (const p of parts) {
          if (p.includes('"poweroff"')) continue;
          q.write(p);
        }
        await sleep(5);
        q.close();
        const c = await QmpClient.connect(s.qmpPath, { timeoutMs: 5000 });
        try {
          expect(await c.execute('query-status')).toHaveProperty('status');
        } finally {
          await c.close();
        }
        expect(s.session.hasEnded).toBe(false);
      }),
      { numRuns: 60 },
    );
    expect(errors).toEqual([]);
  });
});
