/**
 * RspClient against real qemu-system-x86_64 (TCG, `-S`, 64 MiB): handshake and target.xml,
 * registers at reset, `P` then read back, `g`, physical reads and writes against QMP `xp`, 1 MiB
 * pipelined vs serial, virtual reads through page tables built with PageTables (E14 names the
 * chunk), breakpoints, watchpoints, step, cont, interrupt, stops caused through QMP, monitor
 * commands, and detach (PhyMemMode restored, the guest resumed).
 *
 * The guest is loaded with `-device loader`: a real-mode loop at 0x7000, a 1 MiB pattern at
 * 0x100000, and 4-level tables at 0x300000 mapping 0xffffffff80000000 to the pattern.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { RspClient } from '../../src/rsp/client.js';
import type { StopReply, StoppedReply } from '../../src/rsp/codec.js';
import { RspError } from '../../src/rsp/errors.js';
import { describeQemu, freeTcpPort, startQemu, type QemuProcess } from '../helpers/qemu.js';

const CODE = 0x7000;
/** Real mode: nop; loop: inc ax; inc word [0x7100]; jmp loop. */
const LOOP = Uint8Array.of(0x90, 0x40, 0xff, 0x06, 0x00, 0x71, 0xeb, 0xf9);
const LOOP_START = 0x7001n;
const INC_MEMORY = 0x7002n;
const JMP = 0x7006n;
const COUNTER = 0x7100n;

const PATTERN = 0x100000;
const PATTERN_SIZE = 1 << 20;
const TABLES = 0x300000;
const TABLES_END = 0x310000;
const KERNEL_VA = 0xffffffff80000000n;

/** 1 MiB of pseudo-random bytes (a fixed LCG), so misplaced chunks cannot go unnoticed. */
function pattern(): Uint8Array {
  const out = new Uint8Array(PATTERN_SIZE);
  let x = 0x12345678;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const PATTERN_BYTES = pattern();

/** Tables mapping one 4 KiB page at KERNEL_VA to the start of the pattern, and nothing after it. */
function tables(): { image: SparseMemory; cr3: bigint } {
  const mem = new SparseMemory(64 << 20);
  const pt = new PageTables(mem, '4-level', new FrameAllocator(TABLES, TABLES_END));
  pt.map(KERNEL_VA, PATTERN, 4096, { nx: true });
  const image = new SparseMemory(TABLES_END - TABLES);
  for (const [pa, bytes] of mem.writtenFrames()) image.write(pa - TABLES, bytes);
  return { image, cr3: pt.cr3 };
}

const GUEST = tables();

/** Starts QEMU with the guest loaded and the gdbstub on `gdb` (`tcp:...` or `unix:...`). */
function startGuest(qemu: string, gdb: (dir: string) => string): Promise<QemuProcess> {
  return startQemu(
    qemu,
    [
      ...['-accel', 'tcg', '-m', '64', '-S', '-display', 'none', '-nodefaults'],
      ...['-device', `loader,file={dir}/code.bin,addr=${CODE},force-raw=on`],
      ...['-device', `loader,file={dir}/pattern.bin,addr=${PATTERN},force-raw=on`],
      ...['-device', `loader,file={dir}/tables.bin,addr=${TABLES},force-raw=on`],
      ...['-gdb', gdb('{dir}')],
    ],
    async (dir) => {
      writeFileSync(join(dir, 'code.bin'), LOOP);
      writeFileSync(join(dir, 'pattern.bin'), PATTERN_BYTES);
      await writeRawImage(GUEST.image, join(dir, 'tables.bin'));
    },
  );
}

/** Bytes of physical memory as QEMU's own monitor shows them (`xp /Nxb`), through QMP. */
async function xp(q: QemuProcess, pa: bigint, length: number): Promise<Uint8Array> {
  const text = (await q.qmp.execute('human-monitor-command', { 'command-line': `xp /${length}xb 0x${pa.toString(16)}` })) as string;
  const bytes = text
    .split('\n')
    .filter((l) => l.includes(':'))
    .flatMap((l) => l.slice(l.indexOf(':') + 1).trim().split(/\s+/))
    .map((t) => parseInt(t, 16));
  expect(bytes).toHaveLength(length);
  return Uint8Array.from(bytes);
}

async function status(q: QemuProcess): Promise<string> {
  return ((await q.qmp.execute('query-status')) as { status: string }).status;
}

/** The run state once it is `want` (QEMU may take a moment after a detach or a connect), or the last one seen after 2 s. */
async function statusBecomes(q: QemuProcess, want: string): Promise<string> {
  let now = await status(q);
  for (let i = 0; now !== want && i < 40; i++) {
    await new Promise((r) => setTimeout(r, 50));
    now = await status(q);
  }
  return now;
}

async function rejection(p: Promise<unknown>): Promise<RspError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RspError);
  return e as RspError;
}

function stopped(s: StopReply | null): StoppedReply {
  expect(s?.kind).toBe('stopped');
  return s as StoppedReply;
}

describeQemu('RspClient on a real QEMU gdbstub: state, registers and memory', (qemu) => {
  let q: QemuProcess;
  let c: RspClient;

  beforeAll(async () => {
    q = await startGuest(qemu, (dir) => `unix:${dir}/gdb.sock,server=on,wait=off`);
    c = await RspClient.connect(`unix:${q.file('gdb.sock')}`);
  });

  afterAll(async () => {
    await c?.close();
    await q?.stop();
  });

  it('negotiates: PacketSize, multiprocess, target.xml; ack mode unless the stub offers no-ack', async () => {
    expect(c.packetSize).toBeGreaterThanOrEqual(0x1000);
    expect(c.multiprocess).toBe(true);
    expect(c.ackMode).toBe(c.features.get('QStartNoAckMode') !== true);
    expect(c.lastStop).toBeNull(); // a VM stopped by -S sends nothing on connect
    const d = await c.targetDescription();
    expect(d.architecture).toBe('i386:x86-64');
    expect(d.byName.get('rax')).toMatchObject({ regnum: 0, bitsize: 64, offset: 0 });
    expect(d.byName.get('eflags')).toMatchObject({ bitsize: 32 });
    for (const r of ['rip', 'cr0', 'cr2', 'cr3', 'cr4', 'efer', 'fs_base', 'gs_base']) expect(d.byName.get(r)?.bitsize, r).toBe(64);
  });

  it('reads the registers at reset with p', async () => {
    expect(await c.readRegister('rip')).toBe(0xfff0n);
    expect(await c.readRegister('cs')).toBe(0xf000n);
    expect(await c.readRegister('cr0')).toBe(0x60000010n);
    expect(await c.readRegister('eflags')).toBe(0x2n);
    expect(await c.readRegister('cr3')).toBe(0n);
  });

  it('reads every register with g, agreeing with p', async () => {
    const all = await c.readRegisters();
    const d = await c.targetDescription();
    expect(all.size).toBe(d.registers.length);
    for (const r of ['rip', 'cs', 'cr0', 'eflags', 'rsp', 'rdx', 'efer', 'mxcsr']) expect(all.get(r), r).toBe(await c.readRegister(r));
  });

  it('writes cr3 with P and reads it back (p and g)', async () => {
    await c.writeRegister('cr3', GUEST.cr3);
    expect(await c.readRegister('cr3')).toBe(0x300000n);
    expect((await c.readRegisters()).get('cr3')).toBe(0x300000n);
  });

  it('switches to physical memory and reads what QMP xp shows', async () => {
    expect(await c.physicalMemoryMode()).toBe(false);
    await c.setPhysicalMemoryMode(true);
    expect(await c.physicalMemoryMode()).toBe(true);
    const reset = await c.readMemory(0xfffffff0n, 16);
    expect(reset).toEqual(await xp(q, 0xfffffff0n, 16));
    expect(reset[0]).toBe(0xea); // the reset vector: jmp far
    const some = await c.readMemory(BigInt(PATTERN + 0x1234), 100);
    expect(some).toEqual(PATTERN_BYTES.subarray(0x1234, 0x1234 + 100));
    expect(some).toEqual(await xp(q, BigInt(PATTERN + 0x1234), 100));
  });

  it('writes physical memory in several M packets; xp sees the bytes', async () => {
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 31 + 7) & 0xff);
    await c.writeMemory(0x200ffdn, data);
    expect(await xp(q, 0x200ffdn, 5000)).toEqual(data);
    expect(await c.readMemory(0x200ffdn, 5000)).toEqual(data);
  });

  it('reads 1 MiB pipelined and serially: the same bytes, the pattern loaded', async () => {
    const pipelined = await c.readMemory(BigInt(PATTERN), PATTERN_SIZE);
    const serial = await c.readMemory(BigInt(PATTERN), PATTERN_SIZE, { window: 1 });
    expect(Buffer.compare(Buffer.from(pipelined), Buffer.from(serial))).toBe(0);
    expect(Buffer.compare(Buffer.from(pipelined), Buffer.from(PATTERN_BYTES))).toBe(0);
  });

  it('runs monitor commands and returns their text', async () => {
    const regs = await c.monitor('info registers');
    expect(regs).toMatch(/EIP=0000fff0/);
    expect(regs).toMatch(/CR0=60000010 CR2=00000000 CR3=00300000/);
    expect(await c.monitor('info status')).toMatch(/^VM status: paused/);
    expect(await c.monitor('nonsense-command')).toMatch(/unknown command: 'nonsense-command'/);
  });

  it('reads virtual memory through the tables once long mode is on; E14 names the unmapped chunk', async () => {
    await c.setPhysicalMemoryMode(false);
    await c.writeRegister('cr4', 0x20n); // PAE
    await c.writeRegister('efer', 0x900n); // LME | NXE
    await c.writeRegister('cr0', 0x80000011n); // PG | ET | PE: long mode
    expect(await c.readRegister('efer')).toBe(0xd00n); // LMA set by QEMU
    expect(await c.readMemory(KERNEL_VA + 0x10n, 32)).toEqual(PATTERN_BYTES.subarray(0x10, 0x30));
    expect(await c.monitor(`gva2gpa 0x${KERNEL_VA.toString(16)}`)).toMatch(/gpa: 0x100000/);
    const e = await rejection(c.readMemory(KERNEL_VA, 0x2000));
    expect(e).toMatchObject({
      code: 'E_REPLY',
      errno: 0x14,
      message:
        'reading 0x800 bytes at 0xffffffff80001000 (chunk 3 of 4 of the 0x2000 bytes at 0xffffffff80000000): the stub answered E14 (EFAULT: the address is not mapped, or not readable)',
    });
    // Physical mode reads the same bytes at their physical address.
    await c.setPhysicalMemoryMode(true);
    expect(await c.readMemory(BigInt(PATTERN + 0x10), 32)).toEqual(PATTERN_BYTES.subarray(0x10, 0x30));
  });
});

describeQemu('RspClient on a real QEMU gdbstub: running the guest', (qemu) => {
  let q: QemuProcess;
  let c: RspClient;
  const events: StopReply[] = [];

  beforeAll(async () => {
    const port = await freeTcpPort();
    q = await startGuest(qemu, () => `tcp:127.0.0.1:${port}`);
    c = await RspClient.connect(`127.0.0.1:${port}`);
    c.on('stop', (s) => events.push(s));
    // Real mode with cs base 0: run the loop at 0x7000.
    await c.writeRegister('cs', 0n);
    await c.writeRegister('rip', BigInt(CODE));
  });

  afterAll(async () => {
    await c?.close();
    await q?.stop();
  });

  it('steps one instruction', async () => {
    expect(await c.readRegister('rip')).toBe(BigInt(CODE));
    // QEMU now and then answers a step without executing (QEMU-FACTS §7): step until RIP moves.
    let stop: StopReply | null = null;
    for (let i = 0; i < 3 && (await c.readRegister('rip')) === BigInt(CODE); i++) stop = await c.step();
    expect(stopped(stop).signal).toBe(5);
    expect(await c.readRegister('rip')).toBe(LOOP_START);
  });

  it('stops at a software breakpoint, then at a hardware one', async () => {
    const rax = await c.readRegister('rax');
    await c.insertBreakpoint(0, JMP, 1);
    const s = stopped(await c.cont({ timeoutMs: 10_000 }));
    expect(s).toMatchObject({ signal: 5, watch: null });
    expect(await c.readRegister('rip')).toBe(JMP);
    expect(await c.readRegister('rax')).toBe(rax + 1n);
    await c.removeBreakpoint(0, JMP, 1);
    expect(await rejection(c.removeBreakpoint(0, JMP, 1))).toMatchObject({ code: 'E_REPLY', errno: 0x22 });

    await c.insertBreakpoint(1, LOOP_START, 1);
    expect(stopped(await c.cont({ timeoutMs: 10_000 })).signal).toBe(5);
    expect(await c.readRegister('rip')).toBe(LOOP_START);
    await c.removeBreakpoint(1, LOOP_START, 1);
  });

  it('stops at a write watchpoint, reporting the address as inserted, after the writing instruction', async () => {
    await c.insertBreakpoint(2, COUNTER, 2);
    const s = stopped(await c.cont({ timeoutMs: 10_000 }));
    expect(s.watch).toEqual({ kind: 'write', address: COUNTER });
    expect(await c.readRegister('rip')).toBe(JMP);
    await c.removeBreakpoint(2, COUNTER, 2);
  });

  it('refuses requests while running (E_BUSY) and stops on interrupt with T02', async () => {
    const running = c.cont();
    expect(c.running).toBe(true);
    expect(await rejection(c.readRegister('rip'))).toMatchObject({ code: 'E_BUSY' });
    await new Promise((r) => setTimeout(r, 50));
    expect(await status(q)).toBe('running');
    const stop = stopped(await c.interrupt());
    expect(stop.signal).toBe(2);
    expect(await running).toEqual(stop);
    expect([INC_MEMORY, JMP, LOOP_START]).toContain(await c.readRegister('rip'));
  });

  it('reports a breakpoint hit after a QMP cont as an unsolicited stop', async () => {
    events.length = 0;
    await c.insertBreakpoint(0, JMP, 1);
    const next = c.waitForStop({ timeoutMs: 10_000 });
    await q.qmp.execute('cont');
    expect(stopped(await next).signal).toBe(5);
    expect(events).toHaveLength(1);
    expect(await c.readRegister('rip')).toBe(JMP);
    await c.removeBreakpoint(0, JMP, 1);
  });

  it('answers a request made while QMP resumed the guest behind its back (QEMU takes it as an interrupt)', async () => {
    events.length = 0;
    await q.qmp.execute('cont');
    expect(await status(q)).toBe('running');
    const [rip, cr0] = await Promise.all([c.readRegister('rip'), c.readRegister('cr0')]);
    expect([INC_MEMORY, JMP, LOOP_START]).toContain(rip);
    expect(cr0).toBe(0x60000010n);
    expect(events.map((e) => stopped(e).signal)).toEqual([2]);
    expect(await status(q)).toBe('paused');
  });
});

describeQemu('RspClient on a real QEMU gdbstub: detach', (qemu) => {
  let q: QemuProcess;

  beforeAll(async () => {
    q = await startGuest(qemu, (dir) => `unix:${dir}/gdb.sock,server=on,wait=off`);
  });

  afterAll(async () => {
    await q?.stop();
  });

  it('restores PhyMemMode and resumes the guest; the next client finds it running', async () => {
    const first = await RspClient.connect(q.file('gdb.sock'));
    await first.writeRegister('cs', 0n);
    await first.writeRegister('rip', BigInt(CODE));
    await first.setPhysicalMemoryMode(true);
    await first.insertBreakpoint(0, JMP, 1);
    expect(await status(q)).toBe('prelaunch');
    await first.detach();
    expect(first.isClosed).toBe(true);
    expect(await statusBecomes(q, 'running')).toBe('running');

    // Connecting stops the running VM, and QEMU says so with an unsolicited T02.
    const second = await RspClient.connect(q.file('gdb.sock'));
    try {
      expect(stopped(second.lastStop).signal).toBe(2);
      expect(await statusBecomes(q, 'paused')).toBe('paused');
      expect(await second.physicalMemoryMode()).toBe(false);
      expect([INC_MEMORY, JMP, LOOP_START]).toContain(await second.readRegister('rip'));
    } finally {
      await second.close();
    }
    // Closing without detaching leaves the VM stopped.
    expect(await status(q)).toBe('paused');
  });
});
