/**
 * The QMP client, the HMP parsers and physical reads against real qemu-system-x86_64.
 *
 * QEMU gets extra `-qmp` sockets next to the one the test helper holds: `pw.sock` for the client
 * under test, `spare.sock` for one-off connections; the helper's own socket is the busy one.
 * Paging is switched on without guest code: page tables built with PageTables are loaded with
 * `-device loader`, and CR0/CR3/CR4/EFER (and CS, for the 64-bit register layout) are written
 * through the gdbstub, which QMP cannot do.
 */
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';
import { walk } from '../../src/paging/walk.js';
import { QmpClient, type QmpEvent } from '../../src/qmp/client.js';
import { HmpError, QmpError } from '../../src/qmp/errors.js';
import { parseGva2gpa, parseInfoMem, parseInfoRegisters, parseInfoTlb, parseXp, type TlbFlags } from '../../src/qmp/hmp.js';
import { QmpPhysicalMemory, int64 } from '../../src/qmp/physical.js';
import { describeQemu, startQemu, type QemuProcess } from '../helpers/qemu.js';

const BASE_ARGS = ['-accel', 'tcg', '-m', '64', '-S', '-display', 'none', '-nodefaults'];
const EXTRA_QMP = ['-qmp', 'unix:{dir}/pw.sock,server=on,wait=off', '-qmp', 'unix:{dir}/spare.sock,server=on,wait=off'];

/** The error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

describeQemu('QMP against real QEMU: session, registers, memory (paging off)', (qemu) => {
  let q: QemuProcess | undefined;
  let client: QmpClient;

  beforeAll(async () => {
    q = await startQemu(qemu, [...BASE_ARGS, ...EXTRA_QMP]);
    client = await QmpClient.connect(q.file('pw.sock'), { timeoutMs: 10_000 });
  });

  afterAll(async () => {
    await client?.close();
    await q?.stop();
  });

  it('reads the greeting: version and capabilities', () => {
    expect(client.greeting.version.qemu.major).toBeGreaterThanOrEqual(7);
    expect(client.greeting.version.qemu).toEqual({ major: expect.any(Number), minor: expect.any(Number), micro: expect.any(Number) });
    expect(client.greeting.capabilities).toContain('oob');
  });

  it('gets CommandNotFound for a command before capabilities negotiation, and for a second negotiation', async () => {
    const raw = await QmpClient.connect(q!.file('spare.sock'), { negotiate: false, timeoutMs: 10_000 });
    try {
      const before = (await rejection(raw.execute('query-status'))) as QmpError;
      expect(before).toMatchObject({ code: 'E_QMP', errorClass: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" });
      await raw.negotiate();
      expect(await raw.execute('query-status')).toMatchObject({ status: 'prelaunch' });
      const again = (await rejection(raw.negotiate())) as QmpError;
      expect(again).toMatchObject({ code: 'E_QMP', errorClass: 'CommandNotFound' });
      expect(again.desc).toMatch(/negotiation is already complete/);
    } finally {
      await raw.close();
    }
  });

  it('answers query-status, and an unknown command with E_QMP', async () => {
    expect(await client.execute('query-status')).toEqual({ status: 'prelaunch', singlestep: false, running: false });
    expect(await rejection(client.execute('no-such-command'))).toMatchObject({ code: 'E_QMP', errorClass: 'CommandNotFound' });
  });

  it('refuses a second client on a busy socket with E_BUSY, leaving the first one working', async () => {
    const e = await rejection(QmpClient.connect(q!.file('qmp.sock'), { timeoutMs: 1000 }));
    expect(e).toBeInstanceOf(QmpError);
    expect(e).toMatchObject({ code: 'E_BUSY', message: expect.stringMatching(/the QMP socket is in use by another client/) });
    expect(await q!.qmp.execute('query-status')).toMatchObject({ status: 'prelaunch' });
  });

  it('parses info registers at reset', async () => {
    const r = parseInfoRegisters(await client.hmp('info registers'));
    expect(r.layout).toBe('32-bit');
    expect(r.rip).toBe(0xfff0n);
    expect(r.cr0).toBe(0x60000010n);
    expect([r.cr2, r.cr3, r.cr4, r.efer]).toEqual([0n, 0n, 0n, 0n]);
    expect(r.cs).toEqual({ selector: 0xf000, base: 0xffff0000n, limit: 0xffff, flags: 0x9b00 });
    expect(r.gdt).toEqual({ base: 0n, limit: 0xffff });
    expect([r.cpl, r.rflags, r.a20]).toEqual([0, 2n, true]);
  });

  it('reads the same bytes with xp and pmemsave, and chooses by size', async () => {
    const mem = new QmpPhysicalMemory(client, { bulkThreshold: 8192 });
    try {
      for (const [pa, length] of [
        [0xffff0000n, 0x10000],
        [0xfe003n, 0x1ffd],
        [0xfffffff0n, 16],
      ] as const) {
        const viaXp = await mem.readWithXp(pa, length);
        const viaFile = await mem.readWithPmemsave(pa, length);
        expect(viaFile, `pmemsave at 0x${pa.toString(16)}`).not.toBeNull();
        expect(Buffer.from(viaXp).equals(Buffer.from(viaFile!)), `0x${pa.toString(16)}+0x${length.toString(16)}`).toBe(true);
      }
      const reset = await mem.read(0xfffffff0n, 16);
      expect(mem.lastReadMethod).toBe('xp');
      expect(reset[0]).toBe(0xea); // jmp far, the reset vector
      const bios = await mem.read(0xfffc0000n, 0x40000);
      expect(mem.lastReadMethod).toBe('pmemsave');
      expect(bios.subarray(0x3fff0, 0x3fff1)).toEqual(new Uint8Array([0xea]));
      expect(mem.bulkAvailable).toBe(true);
    } finally {
      await mem.close();
    }
  });

  it("reports memory QEMU cannot access (past the 64 MiB of RAM) as E_UNREADABLE; pmemsave reads it as zeros", async () => {
    const mem = new QmpPhysicalMemory(client);
    try {
      await expect(mem.read(0x3fffff0n, 32)).rejects.toMatchObject({ code: 'E_UNREADABLE', address: 0x4000000n });
      await expect(mem.read(0x10000000n, 8)).rejects.toMatchObject({ code: 'E_UNREADABLE', address: 0x10000000n });
      const frames = await mem.frames([0x3fff000, 0x4000000]);
      expect(frames[0]?.byteLength).toBe(4096);
      expect(frames[1]).toBeNull();
      expect(await mem.readWithPmemsave(0x10000000n, 16)).toEqual(new Uint8Array(16));
      expect(parseXp(await client.hmp('xp /4gx 0x3fffff0'))).toMatchObject({ values: [0n, 0n], unreadableAt: 0x4000000n });
    } finally {
      await mem.close();
    }
  });

  it('translates with paging off (gva2gpa is the identity) and says paging is off in info tlb / info mem', async () => {
    expect(parseGva2gpa(await client.hmp('gva2gpa 0x1234'))).toEqual({ mapped: true, gpa: 0x1234n });
    expect(parseInfoTlb(await client.hmp('info tlb'))).toEqual({ paging: false, entries: [] });
    expect(parseInfoMem(await client.hmp('info mem'))).toEqual({ paging: false, ranges: [] });
  });

  it("raises the monitor's refusals as HmpError", async () => {
    await expect(client.hmp('nonsense-command')).rejects.toMatchObject({ code: 'E_HMP_UNKNOWN_COMMAND' });
    const usage = await rejection(client.hmp('xp /2gx zz'));
    expect(usage).toBeInstanceOf(HmpError);
    expect(usage.message).toBe('the QEMU monitor rejected "xp /2gx zz": invalid char \'z\' in expression');
  });

  it('sees STOP and RESUME around stop/cont, and RESET after system_reset', async () => {
    const events: QmpEvent[] = [];
    client.on('event', (e) => events.push(e));
    const resumed = client.waitForEvent('RESUME', 10_000);
    await client.execute('cont');
    await resumed;
    expect(await client.execute('query-status')).toMatchObject({ status: 'running', running: true });
    const mark = client.eventCount;
    await client.execute('stop');
    expect((await client.waitForEvent('STOP', 10_000, { since: mark })).event).toBe('STOP');
    expect(await client.execute('query-status')).toMatchObject({ status: 'paused', running: false });
    const reset = client.waitForEvent('RESET', 10_000);
    await client.execute('system_reset');
    expect((await reset).data).toEqual({ guest: false, reason: 'host-qmp-system-reset' });
    expect(await client.execute('query-status')).toMatchObject({ status: 'prelaunch' });
    expect(parseInfoRegisters(await client.hmp('info registers')).rip).toBe(0xfff0n);
    expect(events.map((e) => e.event)).toEqual(['RESUME', 'STOP', 'RESET']);
    expect(events.every((e) => e.timestamp.seconds > 0)).toBe(true);
  });
});

// Guest-physical layout of the image loaded at BASE: tables, a GDT (mapped at VA 0, where GDTR
// points after reset, so the gdbstub can load CS from it), a text and a data page.
const BASE = 0x200000;
const GDT = 0x230000;
const TEXT = 0x231000;
const DATA = 0x232000;
const END = 0x240000;

interface Guest {
  mem: SparseMemory;
  cr3: { fourLevel: number; fiveLevel: number; pae: number };
}

function buildGuest(): Guest {
  const mem = new SparseMemory(64 << 20);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(BASE, 0x220000));
  pt.map(0n, GDT, 4096, { write: false });
  pt.map(0xffffffff80000000n, TEXT, 4096, { write: false, global: true });
  pt.map(0xffffffff80001000n, DATA, 4096, { nx: true, accessed: true, dirty: true });
  pt.map(0x400000n, 0x400000, 2 << 20, { user: true, pcd: true, pwt: true });
  pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true });
  pt.map(0x7ffff000n, DATA, 4096, { user: true, write: false });
  pt.map(0xffffffffffc00000n, 0x600000, 2 << 20);
  pt.map(0xfffffffffffff000n, TEXT, 4096);
  const pt5 = new PageTables(mem, '5-level', new FrameAllocator(0x220000, GDT));
  pt5.map(0n, GDT, 4096, { write: false });
  pt5.map(0xff00000000000000n, TEXT, 4096, { nx: true });
  const pae = new PageTables(mem, 'PAE', new FrameAllocator(0x23c000, END));
  pae.map(0n, GDT, 4096, { write: false });
  pae.map(0xc0000000n, 0x400000, 2 << 20, { nx: true });
  mem.write64(GDT + 8, 0x00af9a000000ffffn); // 64-bit code
  mem.write64(GDT + 16, 0x00cf92000000ffffn); // data
  mem.write(TEXT, new TextEncoder().encode('pagewalk text'));
  return { mem, cr3: { fourLevel: pt.root, fiveLevel: pt5.root, pae: pae.root } };
}

/** Just enough of the gdbstub to write registers: read target.xml first (QEMU ignores `P` until then). */
class GdbRegisters {
  private buf = '';
  private waiter: (() => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.waiter?.();
    });
  }

  static async open(port: number): Promise<GdbRegisters> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const g = new GdbRegisters(socket);
    expect(await g.packet('qXfer:features:read:target.xml:0,fff')).toMatch(/^[lm]<\?xml/);
    return g;
  }

  /** Writes 64-bit registers in order (`P<n>=<16 little-endian hex digits>`); 0x12 (cs) is 32-bit. */
  async write(regs: readonly [number, bigint][]): Promise<void> {
    for (const [n, v] of regs) {
      const bytes = Buffer.alloc(8);
      bytes.writeBigUInt64LE(v);
      const hex = n >= 0x11 && n <= 0x17 ? bytes.subarray(0, 4).toString('hex') : bytes.toString('hex');
      expect(await this.packet(`P${n.toString(16)}=${hex}`), `P${n.toString(16)}`).toBe('OK');
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private async packet(payload: string): Promise<string> {
    let sum = 0;
    for (const c of payload) sum = (sum + c.charCodeAt(0)) & 0xff;
    this.socket.write(`$${payload}#${sum.toString(16).padStart(2, '0')}`);
    for (;;) {
      const m = /\$([^#]*)#[0-9a-f]{2}/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m.index + m[0].length);
        this.socket.write('+');
        return m[1]!;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The nine flag characters of `info tlb` back from parsed flags. */
function flagChars(f: TlbFlags): string {
  const on: [boolean, string][] = [[f.nx, 'X'], [f.g, 'G'], [f.ps, 'P'], [f.d, 'D'], [f.a, 'A'], [f.pcd, 'C'], [f.pwt, 'T'], [f.user, 'U'], [f.write, 'W']];
  return on.map(([b, c]) => (b ? c : '-')).join('');
}

/** CR0 with ET (bit 4), which QEMU keeps set whatever is written. */
const CR0_ET = 0x10n;
const LONG_MODE = { cr0: CR0.PG | CR0.WP | CR0_ET | CR0.PE, cr4: CR4.PAE, efer: EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE };

describeQemu('QMP against real QEMU: page tables in guest RAM, paging on through the gdbstub', (qemu) => {
  const guest = buildGuest();
  let q: QemuProcess | undefined;
  let client: QmpClient;
  let gdb: GdbRegisters | undefined;

  beforeAll(async () => {
    const gdbPort = await freePort();
    q = await startQemu(
      qemu,
      [
        ...BASE_ARGS,
        '-cpu', 'max',
        ...EXTRA_QMP,
        '-gdb', `tcp:127.0.0.1:${gdbPort}`,
        '-device', `loader,file={dir}/guest.bin,addr=${BASE},force-raw=on`,
      ],
      async (dir) => {
        const region = new SparseMemory(END - BASE);
        for (const [pa, bytes] of guest.mem.writtenFrames()) if (pa >= BASE) region.write(pa - BASE, bytes);
        await writeRawImage(region, join(dir, 'guest.bin'));
      },
    );
    client = await QmpClient.connect(q.file('pw.sock'), { timeoutMs: 10_000 });
    gdb = await GdbRegisters.open(gdbPort);
    // EFER (LME+LMA) and CR4.PAE before CR0.PG: QEMU ignores a CR0 write that turns on paging with LME but no PAE.
    // Then CS = 0x08, loaded through the new tables from the GDT at VA 0: a 64-bit code segment.
    await gdb.write([
      [0x20, LONG_MODE.efer],
      [0x1e, LONG_MODE.cr4],
      [0x1d, BigInt(guest.cr3.fourLevel)],
      [0x1b, LONG_MODE.cr0],
      [0x12, 0x08n],
    ]);
  });

  afterAll(async () => {
    gdb?.close();
    await client?.close();
    await q?.stop();
  });

  it('parses info registers in the 64-bit layout with the registers written through the gdbstub', async () => {
    const r = parseInfoRegisters(await client.hmp('info registers'));
    expect(r.layout).toBe('64-bit');
    expect([r.cr0, r.cr3, r.cr4, r.efer]).toEqual([LONG_MODE.cr0, BigInt(guest.cr3.fourLevel), LONG_MODE.cr4, LONG_MODE.efer]);
    expect(r.cs).toEqual({ selector: 8, base: 0n, limit: 0xffffffff, flags: 0xaf9a00 });
    expect(r.rip).toBe(0xfff0n);
    expect(Object.keys(r.gprs)).toHaveLength(16);
  });

  it('parses info tlb: one line per leaf, each agreeing with our own walk of the same tables', async () => {
    const tlb = parseInfoTlb(await client.hmp('info tlb'));
    expect(tlb.entries.map((e) => [e.va, e.pa, flagChars(e.flags)])).toEqual([
      [0n, 0x230000n, '---------'],
      [0x400000n, 0x400000n, '--P--CTUW'],
      [0x7ffff000n, 0x232000n, '-------U-'],
      [0xffff800000000000n, 0n, 'X-P-----W'],
      [0xffffffff80000000n, 0x231000n, '-G-------'],
      [0xffffffff80001000n, 0x232000n, 'X--DA---W'],
      [0xffffffffffc00000n, 0x600000n, '--P-----W'],
      [0xfffffffffffff000n, 0x231000n, '--------W'],
    ]);
    const ctx = pagingContext({ ...LONG_MODE, cr3: BigInt(guest.cr3.fourLevel) });
    for (const e of tlb.entries) {
      const w = walk(guest.mem, ctx, e.va);
      expect(w.translation?.pa, `walk 0x${e.va.toString(16)}`).toBe(e.pa);
      expect(w.translation?.pageSize !== 4096).toBe(e.flags.ps);
    }
  });

  it('parses info mem: merged ranges, the last one ending at 2^64', async () => {
    const mem = parseInfoMem(await client.hmp('info mem'));
    expect(mem.ranges.map((r) => [r.start, r.end, `${r.user ? 'u' : '-'}r${r.write ? 'w' : '-'}`])).toEqual([
      [0n, 0x1000n, '-r-'],
      [0x400000n, 0x600000n, 'urw'],
      [0x7ffff000n, 0x80000000n, 'ur-'],
      [0xffff800000000000n, 0xffff800040000000n, '-rw'],
      [0xffffffff80000000n, 0xffffffff80001000n, '-r-'],
      [0xffffffff80001000n, 0xffffffff80002000n, '-rw'],
      [0xffffffffffc00000n, 0xffffffffffe00000n, '-rw'],
      [0xfffffffffffff000n, 1n << 64n, '-rw'],
    ]);
  });

  it('translates with gva2gpa, reads through the tables with x, and memsaves a virtual address given as a signed int64', async () => {
    expect(parseGva2gpa(await client.hmp('gva2gpa 0xffffffff80000005'))).toEqual({ mapped: true, gpa: BigInt(TEXT + 5) });
    expect(parseGva2gpa(await client.hmp('gva2gpa 0xffff800000234567'))).toEqual({ mapped: true, gpa: 0x234567n });
    expect(parseGva2gpa(await client.hmp('gva2gpa 0xffffffff80002000'))).toEqual({ mapped: false });
    const viaTables = parseXp(await client.hmp('x /2gx 0xffffffff80000000'));
    const physical = await new QmpPhysicalMemory(client).read(BigInt(TEXT), 16);
    expect(Buffer.from(viaTables.bytes).equals(Buffer.from(physical))).toBe(true);
    expect(parseXp(await client.hmp('x /2gx 0xffffffff80002000')).unreadableAt).toBe(0xffffffff80002000n);
    const file = q!.file('text.bin');
    await client.execute('memsave', { val: int64(0xffffffff80000000n), size: 13, filename: file });
    expect(readFileSync(file, 'latin1')).toBe('pagewalk text');
    const positive = (await rejection(client.execute('memsave', { val: 0xffffffff80000000n, size: 13, filename: file }))) as QmpError;
    expect(positive).toMatchObject({ code: 'E_QMP', errorClass: 'GenericError' });
  });

  it("shows QEMU 7.2's PAE quirk: the NX bit leaks into a large page's address in info tlb, and the parser clears it", async () => {
    // Leave long mode first (CR0.PG off), then PAE with NXE.
    await gdb!.write([
      [0x1b, CR0.PE | CR0.WP | CR0_ET],
      [0x20, EFER.NXE],
      [0x1e, CR4.PAE],
      [0x1d, BigInt(guest.cr3.pae)],
      [0x1b, LONG_MODE.cr0],
    ]);
    const text = await client.hmp('info tlb');
    expect(text).toContain('00000000c0000000: 8000000000400000 X-P-----W');
    expect(parseInfoTlb(text).entries.map((e) => [e.va, e.pa, flagChars(e.flags)])).toEqual([
      [0n, 0x230000n, '---------'],
      [0xc0000000n, 0x400000n, 'X-P-----W'],
    ]);
    expect(parseInfoMem(await client.hmp('info mem')).ranges.map((r) => [r.start, r.end])).toEqual([
      [0n, 0x1000n],
      [0xc0000000n, 0xc0200000n],
    ]);
  });

  it('under LA57, lists 5-level mappings in info tlb while info mem prints nothing (QEMU 7.2)', async () => {
    await gdb!.write([
      [0x1b, CR0.PE | CR0.WP | CR0_ET],
      [0x20, LONG_MODE.efer],
      [0x1e, CR4.PAE | CR4.LA57],
      [0x1d, BigInt(guest.cr3.fiveLevel)],
      [0x1b, LONG_MODE.cr0],
    ]);
    const r = parseInfoRegisters(await client.hmp('info registers'));
    expect(r.cr4).toBe(CR4.PAE | CR4.LA57);
    expect(parseInfoTlb(await client.hmp('info tlb')).entries.map((e) => [e.va, e.pa, flagChars(e.flags)])).toEqual([
      [0n, 0x230000n, '---------'],
      [0xff00000000000000n, BigInt(TEXT), 'X-------W'],
    ]);
    // QEMU 7.2's 5-level `info mem` tests the present bit the wrong way round: it prints nothing,
    // after walking every non-present entry (seconds of work), so it is no use under LA57.
    expect(parseInfoMem(await client.hmp('info mem'))).toEqual({ paging: true, ranges: [] });
    expect(parseGva2gpa(await client.hmp('gva2gpa 0xff00000000000010'))).toEqual({ mapped: true, gpa: BigInt(TEXT + 0x10) });
  });
});
