/**
 * The methods of the WebSocket API, mirroring the CLI: each with its parameters' spec, whether it
 * writes to the guest, and what it runs on the shared session. Results are the CLI's JSON shapes;
 * `map` and `diff` stream their items as notifications (`map.ranges`, `diff.entries`) before the
 * answer unless `stream: false`.
 */
import { createRequire } from 'node:module';
import { ApiError } from '../api/errors.js';
import type { PagewalkSession } from '../api/session.js';
import type { ParamsSpec } from './params.js';
import { notificationText } from './rpc.js';
import type { RpcPeer } from './peer.js';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** What a method runs with. */
export interface MethodContext {
  session: PagewalkSession;
  /** The checked parameters. */
  params: Record<string, unknown>;
  /** The request id (for streamed notifications); undefined for a notification request. */
  id: string | number | null | undefined;
  peer: RpcPeer;
  /** Whether writes are allowed (`--allow-write`). */
  allowWrite: boolean;
  /** Most items a non-streamed map or diff answers with. */
  maxItems: number;
}

/** One method. */
export interface Method {
  params: ParamsSpec;
  /** True when it changes guest memory or registers (refused without --allow-write). */
  writes?: boolean;
  run(ctx: MethodContext): Promise<unknown>;
}

const address = { kind: 'address' } as const;
const bool = { kind: 'boolean' } as const;
const window = { from: address, to: address, cr3: address } as const;
const streaming = { stream: bool, chunk: { kind: 'integer', min: 1, max: 4096 } } as const;

/** The notifications the server sends, by name. */
export const NOTIFICATIONS = ['stopped', 'cr3Write', 'targetLost', 'map.ranges', 'diff.entries'] as const;

/** Default ranges (or diff entries) per streamed notification. */
const DEFAULT_CHUNK = 256;

/**
 * Sends the items of `items` in notifications of `chunk` items each (`{ id, [key]: [...] }`),
 * waiting for the client to take each before reading on; resolves with the count and the return value.
 */
async function streamItems<T, R>(ctx: MethodContext, method: string, key: string, items: AsyncGenerator<T, R, undefined>): Promise<{ count: number; last: R }> {
  const chunk = (ctx.params.chunk as number | undefined) ?? DEFAULT_CHUNK;
  let buffer: T[] = [];
  let count = 0;
  const flush = async (): Promise<void> => {
    const text = notificationText(method, { id: ctx.id ?? null, [key]: buffer });
    buffer = [];
    await ctx.peer.push(text, () => ctx.session.contended);
  };
  try {
    for (;;) {
      const r = await items.next();
      if (r.done) {
        if (buffer.length > 0) await flush();
        return { count, last: r.value };
      }
      buffer.push(r.value);
      count++;
      if (buffer.length >= chunk) await flush();
    }
  } finally {
    await items.return(undefined as R);
  }
}

/** Collects up to `maxItems` items; E_TOO_LARGE beyond. */
async function collect<T, R>(ctx: MethodContext, what: string, items: AsyncGenerator<T, R, undefined>): Promise<{ list: T[]; last: R }> {
  const list: T[] = [];
  try {
    for (;;) {
      const r = await items.next();
      if (r.done) return { list, last: r.value };
      if (list.length >= ctx.maxItems) throw new ApiError('E_TOO_LARGE', `${what}: over ${ctx.maxItems} items: ask for it streamed ("stream": true, the default)`);
      list.push(r.value);
    }
  } finally {
    await items.return(undefined as R);
  }
}

/** The methods, by name. */
export const METHODS: Readonly<Record<string, Method>> = {
  info: {
    params: { members: {} },
    run: async ({ session, allowWrite }) => ({
      server: 'pagewalk',
      version,
      target: { ...session.info },
      debuggable: session.debuggable,
      running: session.running,
      allowWrite,
      methods: Object.keys(METHODS),
      notifications: [...NOTIFICATIONS],
    }),
  },
  regs: {
    params: { members: {} },
    run: ({ session }) => session.regs(),
  },
  walk: {
    params: { members: { va: { kind: 'addresses', max: 1024 }, access: { kind: 'enum', values: ['read', 'write', 'exec'] }, user: bool, cr3: address }, required: ['va'] },
    run: async ({ session, params: p }) => {
      const o = { access: p.access as 'read' | 'write' | 'exec' | undefined, user: p.user as boolean | undefined, cr3: p.cr3 as string | number | undefined };
      if (!Array.isArray(p.va)) return session.walk(p.va as string | number, o);
      const out = [];
      for (const va of p.va as (string | number)[]) out.push(await session.walk(va, o));
      return out;
    },
  },
  map: {
    params: { members: { ...window, ...streaming } },
    run: async (ctx) => {
      const p = ctx.params;
      const m = await ctx.session.mapStream({ from: p.from as string | undefined, to: p.to as string | undefined, cr3: p.cr3 as string | undefined });
      if (p.stream === false) {
        const { list, last } = await collect(ctx, 'map', m.items);
        return { ...m.header, ranges: list, summary: last };
      }
      const { count, last } = await streamItems(ctx, 'map.ranges', 'ranges', m.items);
      return { ...m.header, streamed: count, summary: last };
    },
  },
  diff: {
    params: { members: { against: address, ...window, ...streaming }, required: ['against'] },
    run: async (ctx) => {
      const p = ctx.params;
      const d = await ctx.session.diffStream({ against: p.against as string, from: p.from as string | undefined, to: p.to as string | undefined, cr3: p.cr3 as string | undefined });
      if (p.stream === false) {
        const { list, last } = await collect(ctx, 'diff', d.items);
        return { ...d.header, entries: list, counts: last };
      }
      const { count, last } = await streamItems(ctx, 'diff.entries', 'entries', d.items);
      return { ...d.header, streamed: count, counts: last };
    },
  },
  phys2virt: {
    params: { members: { pa: address, cr3: address }, required: ['pa'] },
    run: ({ session, params: p }) => session.phys2virt(p.pa as string, { cr3: p.cr3 as string | undefined }),
  },
  check: {
    params: { members: { cr3: address } },
    run: ({ session, params: p }) => session.check(p.cr3 as string | undefined),
  },
  fault: {
    params: { members: { errorCode: address, cr2: address, rip: address }, required: ['errorCode'] },
    run: ({ session, params: p }) => session.fault({ errorCode: p.errorCode as string, cr2: p.cr2 as string | undefined, rip: p.rip as string | undefined }),
  },
  explainLog: {
    params: { members: { text: { kind: 'string', maxChars: 16 << 20 }, tables: bool }, required: ['text'] },
    run: ({ session, params: p }) => session.explainLog({ text: p.text as string }, { tables: p.tables as boolean | undefined }),
  },
  step: {
    params: { members: {} },
    run: ({ session }) => session.step(),
  },
  cont: {
    params: { members: {} },
    run: async ({ session }) => {
      const { stop } = await session.resume();
      // The stop reaches every client as a `stopped` notification; a failure of the run as targetLost.
      void stop.catch(() => undefined);
      return { running: true };
    },
  },
  interrupt: {
    params: { members: {} },
    run: ({ session }) => session.interrupt(),
  },
  'watchCr3.start': {
    params: {
      members: {
        count: { kind: 'integer', min: 1, max: 1_000_000_000 },
        stopOn: { kind: 'enum', values: ['danger', 'every'] },
        maxSteps: { kind: 'integer', min: 1, max: 1_000_000_000 },
        scanBudgetMiB: { kind: 'integer', min: 1, max: 1 << 20 },
      },
    },
    run: async ({ session, params: p }) => {
      await session.startWatch({
        count: p.count as number | undefined,
        stopOn: p.stopOn as 'danger' | 'every' | undefined,
        maxSteps: p.maxSteps as number | undefined,
        scanBudgetMiB: p.scanBudgetMiB as number | undefined,
      });
      // Each write reaches every client as `cr3Write`, the end as `stopped`.
      return { watching: true };
    },
  },
  'watchCr3.stop': {
    params: { members: {} },
    run: ({ session }) => session.stopWatch(),
  },
  'breakpoint.set': {
    params: { members: { va: address }, required: ['va'] },
    run: ({ session, params: p }) => session.setBreakpoint(p.va as string),
  },
  'breakpoint.delete': {
    params: { members: { va: address }, required: ['va'] },
    run: ({ session, params: p }) => session.deleteBreakpoint(p.va as string),
  },
  'breakpoint.list': {
    params: { members: {} },
    run: async ({ session }) => ({ breakpoints: session.breakpointList }),
  },
  writeRegister: {
    params: { members: { name: { kind: 'string', maxChars: 16, pattern: /^[a-z][a-z0-9_]*$/ }, value: address }, required: ['name', 'value'] },
    writes: true,
    run: ({ session, params: p }) => session.writeRegister(p.name as string, p.value as string),
  },
  writePhysical: {
    params: { members: { pa: address, bytes: { kind: 'string', maxChars: 1 << 21, pattern: /^(?:[0-9a-fA-F]{2})+$/ } }, required: ['pa', 'bytes'] },
    writes: true,
    run: ({ session, params: p }) => session.writePhysical(p.pa as string, Buffer.from(p.bytes as string, 'hex')),
  },
};
