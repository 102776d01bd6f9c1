/**
 * The emulator's gdbstub over a real socket, with pagewalk's own RspClient and with raw bytes:
 * every packet class against QEMU 7.2's answers (QEMU-FACTS.md §2-3), stop replies, breakpoints,
 * watchpoints, stepping, interrupts, PhyMemMode, the monitor, one client at a time, multiprocess
 * stickiness, detach and kill, and damaged input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from '../../src/qmp/client.js';
import { checkHmpOutput } from '../../src/qmp/hmpText.js';
import { parseGva2gpa, parseInfoMem, parseInfoRegisters, parseInfoTlb, parseXp } from '../../src/qmp/hmp.js';
import { RspClient } from '../../src/rsp/client.js';
import { hexToText, parseStopReply, textToHex } from '../../src/rsp/codec.js';
import { encodePacket } from '../../src/rsp/framing.js';
import { resolveTargetDescription } from '../../src/rsp/targetXml.js';
import { TARGET_ANNEXES } from '../../src/emu/rspRegisters.js';
import { CODE_VA, DATA_VA, L, hh } from './fixtures.js';
import { COUNTER_VA, READ_VA, RawRsp, haltProgram, serve, sleep, tripleFaultProgram, until, type Served, type ServeOptions } from './serverFixtures.js';

let served: Served | null = null;
const open: { close(): unknown }[] = [];

async function start(o: ServeOptions = {}): Promise<Served> {
  served = await serve(o);
  return served;
}

async function client(s: Served): Promise<RspClient> {
  const c = await RspClient.connect(s.gdb, { timeoutMs: 5000 });
  open.push({ close: () => c.close() });
  return c;
}

async function raw(s: Served): Promise<RawRsp> {
  const r = await RawRsp.connect(s.gdb);
  open.push(r);
  return r;
}

afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
  await served?.close();
  served = null;
});

/** The `g` reply of the loop machine at its start, register by register (QEMU's i386-64bit.xml order). */
const G_AT_START = [
  '0000000000000000'.repeat(7), // rax rbx rcx rdx rsi rdi rbp
  '00f03f80ffffffff', // rsp 0xffffffff803ff000
  '0000000000000000'.repeat(8), // r8..r15
  '00001080ffffffff', // rip 0xffffffff80100000
  '02000000', // eflags
  '08000000', '10000000', '10000000', '10000000', '00000000', '00000000', // cs ss ds es fs gs
  '0000000000000000'.repeat(3), // fs_base gs_base k_gs_base
  '1100018000000000', // cr0 0x80010011
  '0000000000000000', // cr2
  '0000010000000000', // cr3 0x10000
  'a000000000000000', // cr4 0xa0
  '0000000000000000', // cr8
  '000d000000000000', // efer 0xd00
  '00'.repeat(80), // st0..st7
  '7f030000', '00000000'.repeat(7), // fctrl 0x37f, fstat..fop
  '00'.repeat(256), // xmm0..xmm15
  '801f0000', // mxcsr 0x1f80
].join('');

describe('handshake and target description', () => {
  it("answers qSupported, vCont? and QStartNoAckMode as QEMU 7.2 does, and stays in ack mode", async () => {
    const s = await start();
    const c = await client(s);
    expect(c.packetSize).toBe(0x1000);
    expect(c.ackMode).toBe(true);
    expect(c.multiprocess).toBe(true);
    expect(await c.request('QStartNoAckMode')).toBe('');
    expect(await c.request('vCont?')).toBe('vCont;c;C;s;S');
    expect(await c.request('vMustReplyEmpty')).toBe('');
  });

  it('serves target.xml and i386-64bit.xml in chunks of at most 2045 bytes; E00 for unknown annexes and offsets past the end', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request('qXfer:features:read:target.xml:0,ffb')).toBe(
      'l<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="i386-64bit.xml"/></target>',
    );
    const size = TARGET_ANNEXES.get('i386-64bit.xml')!.length;
    const heads: string[] = [];
    const lengths: number[] = [];
    for (let off = 0; ; ) {
      const chunk = await r.request(`qXfer:features:read:i386-64bit.xml:${off.toString(16)},ffb`);
      heads.push(chunk[0]!);
      lengths.push(chunk.length - 1);
      off += chunk.length - 1;
      if (chunk[0] === 'l') break;
    }
    expect(heads).toEqual(['m', 'm', 'm', 'm', 'l'].slice(5 - heads.length));
    expect(lengths.slice(0, -1).every((n) => n === 2045)).toBe(true);
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(size);
    expect(await r.request('qXfer:features:read:i386-64bit.xml:10,8')).toMatch(/^m[\s\S]{8}$/);
    expect(await r.request(`qXfer:features:read:i386-64bit.xml:${size.toString(16)},10`)).toBe('l');
    expect(await r.request(`qXfer:features:read:i386-64bit.xml:${(size + 1).toString(16)},10`)).toBe('E00');
    expect(await r.request('qXfer:features:read:i386-32bit.xml:0,ffb')).toBe('E00');
  });

  it('describes 66 registers in QEMU order: cr0-cr4, cr8 and efer at 0x1b-0x20, 608 bytes of g, cs_base..es_base commented out', async () => {
    const s = await start();
    const c = await client(s);
    const d = await c.targetDescription();
    expect(d.architecture).toBe('i386:x86-64');
    expect(d.registers).toHaveLength(66);
    expect(d.gSize).toBe(608);
    const at = (n: string) => [d.byName.get(n)!.regnum, d.byName.get(n)!.bitsize];
    expect([at('rip'), at('eflags'), at('cs'), at('fs_base'), at('k_gs_base')]).toEqual([[0x10, 64], [0x11, 32], [0x12, 32], [0x18, 64], [0x1a, 64]]);
    expect([at('cr0'), at('cr2'), at('cr3'), at('cr4'), at('cr8'), at('efer')]).toEqual([[0x1b, 64], [0x1c, 64], [0x1d, 64], [0x1e, 64], [0x1f, 64], [0x20, 64]]);
    expect([at('st0'), at('fctrl'), at('xmm0'), at('mxcsr')]).toEqual([[0x21, 80], [0x29, 32], [0x31, 128], [0x41, 32]]);
    expect(d.byName.has('cs_base')).toBe(false);
    expect(new TextDecoder().decode(TARGET_ANNEXES.get('i386-64bit.xml'))).toContain('<!--reg name="cs_base"');
    expect(d.byName.get('cr3')!.type).toBe('x64_cr3');
  });

  it('parses the same with the description resolver the client uses, straight from the annexes', async () => {
    const d = await resolveTargetDescription(async (a) => new TextDecoder().decode(TARGET_ANNEXES.get(a)!));
    expect(d.registers.map((r) => r.name).slice(0x10, 0x21)).toEqual([
      'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base', 'k_gs_base', 'cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer',
    ]);
  });
});

describe('registers', () => {
  it('g returns all 608 bytes in target.xml order', async () => {
    const s = await start();
    const r = await raw(s);
    expect(G_AT_START).toHaveLength(1216);
    expect(await r.request('g')).toBe(G_AT_START);
  });

  it('p and P answer empty until a target description was read on the connection, then work at full width', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request('p1d')).toBe('');
    expect(await r.request('P0=0100000000000000')).toBe('');
    await r.request('qXfer:features:read:target.xml:0,ffb');
    expect(await r.request('p1d')).toBe('0000010000000000');
    expect(await r.request('p11')).toBe('02000000');
    expect(await r.request('p21')).toBe('00'.repeat(10));
    expect(await r.request('p29')).toBe('7f030000');
    expect(await r.request('p42')).toBe('E14');
    // P consumes the register's full width: four bytes replace the low half, the rest stays.
    expect(await r.request('P0=1122334455667788')).toBe('OK');
    expect(await r.request('P0=aabbccdd')).toBe('OK');
    expect(await r.request('p0')).toBe('aabbccdd55667788');
    expect(await r.request('P42=00')).toBe('OK');
    expect(await r.request('P0=zz')).toBe('E22');
    // A new connection must read the description again.
    r.close();
    const again = await raw(s);
    expect(await again.request('p1d')).toBe('');
  });

  it('P of cr3 takes effect at once: m reads go through the new tables', async () => {
    const s = await start();
    const c = await client(s);
    expect(Buffer.from(await c.readMemory(s.code.address('top'), 8)).toString('hex')).toBe('48ff042518002080');
    await c.writeRegister('cr3', 0x123000n);
    expect(s.m.getRegister('cr3')).toBe(0x123000n);
    await expect(c.readMemory(s.code.address('top'), 8)).rejects.toMatchObject({ code: 'E_REPLY', errno: 0x14 });
    await c.writeRegister('cr3', 0x10000n);
    expect(Buffer.from(await c.readMemory(s.code.address('top'), 8)).toString('hex')).toBe('48ff042518002080');
  });

  it('G writes registers in order as far as the data reaches; g of G is a no-op', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request(`G${G_AT_START}`)).toBe('OK');
    expect(await r.request('g')).toBe(G_AT_START);
    expect(await r.request('G0700000000000000')).toBe('OK');
    expect(s.m.getRegister('rax')).toBe(7n);
    expect(s.m.getRegister('rbx')).toBe(0n);
    expect(await r.request('G0')).toBe('E22');
  });

  it('writes selectors, rip, eflags and efer through the client', async () => {
    const s = await start();
    const c = await client(s);
    await c.writeRegister('rip', s.code.address('after_inc'));
    await c.writeRegister('eflags', 0x246n);
    await c.writeRegister('rcx', 0xdeadbeefn);
    const regs = await c.readRegisters();
    expect([regs.get('rip'), regs.get('eflags'), regs.get('rcx'), regs.get('efer')]).toEqual([s.code.address('after_inc'), 0x246n, 0xdeadbeefn, 0xd00n]);
  });
});

describe('memory', () => {
  it('m reads through the current CR3: at most 0x800 bytes, E22 past that or without a length, empty for 0, E14 where unmapped', async () => {
    const s = await start();
    const r = await raw(s);
    const top = s.code.address('top').toString(16);
    expect(await r.request(`m${top},8`)).toBe('48ff042518002080');
    expect(await r.request(`m0x${top.toUpperCase()},0X8`)).toBe('48ff042518002080');
    expect((await r.request(`m${top},800`)).length).toBe(0x1000);
    expect(await r.request(`m${top},801`)).toBe('E22');
    expect(await r.request(`m${top}`)).toBe('E22');
    expect(await r.request(`m${top},0`)).toBe('');
    // The last mapped bytes, then a read that crosses into the unmapped page: E14 for the whole packet.
    expect(await r.request(`m${hh(0x3ffff8).toString(16)},8`)).toBe('0000000000000000');
    expect(await r.request(`m${hh(0x3ffff8).toString(16)},10`)).toBe('E14');
    expect(await r.request('m800000000000,8')).toBe('E14'); // non-canonical
    expect(await r.request('mffff800000000000,8')).toBe('E14'); // no PML4 entry
  });

  it('M writes through the tables, ignoring page protection; E14 where unmapped, E22 when the data is short', async () => {
    const s = await start();
    const r = await raw(s);
    const at = DATA_VA + 0x100n;
    expect(await r.request(`M${at.toString(16)},4:deadbeef`)).toBe('OK');
    expect(Buffer.from(s.m.readPhysical(L.data + 0x100, 4)).toString('hex')).toBe('deadbeef');
    expect(await r.request(`M${at.toString(16)},4:dead`)).toBe('E22');
    expect(await r.request('Mffff800000000000,1:00')).toBe('E14');
    expect(await r.request('X0,0:')).toBe('');
  });

  it('Qqemu.PhyMemMode makes m and M physical, reads past RAM as zeros, and outlives the connection', async () => {
    const s = await start();
    // Physical 0x500000 is RAM that no virtual address maps.
    s.m.writePhysical(0x500000, Uint8Array.of(0x5a, 0xa5));
    const r = await raw(s);
    expect(await r.request('qqemu.PhyMemMode')).toBe('0');
    expect(await r.request('m500000,2')).toBe('E14');
    expect(await r.request('Qqemu.PhyMemMode:1')).toBe('OK');
    expect(await r.request('m500000,2')).toBe('5aa5');
    expect(await r.request('qqemu.PhyMemMode')).toBe('1');
    expect(await r.request(`m${(L.code + 7).toString(16)},8`)).toBe('48ff042518002080');
    expect(await r.request(`m${(L.ram - 4).toString(16)},8`)).toBe('0000000000000000');
    expect(await r.request('mffffffff80000000,8')).toBe('0000000000000000');
    expect(await r.request('m100000000,10')).toBe('00'.repeat(16));
    expect(await r.request(`M${(L.data + 0x200).toString(16)},2:cafe`)).toBe('OK');
    expect(Buffer.from(s.m.readVirtual(DATA_VA + 0x200n, 2)).toString('hex')).toBe('cafe');
    r.close();
    const next = await raw(s);
    expect(await next.request('qqemu.PhyMemMode')).toBe('1');
    expect(await next.request('Qqemu.PhyMemMode:2')).toBe('OK');
    expect(await next.request('qqemu.PhyMemMode')).toBe('1');
    expect(await next.request('Qqemu.PhyMemMode:0')).toBe('OK');
    expect(await next.request('m500000,2')).toBe('E14');
  });

  it('the client reads a large range in pipelined 0x800-byte packets, and restores PhyMemMode on detach', async () => {
    const s = await start();
    const c = await client(s);
    await c.setPhysicalMemoryMode(true);
    const bytes = await c.readMemory(BigInt(L.code), 0x40000);
    expect(Buffer.from(bytes.subarray(7, 15)).toString('hex')).toBe('48ff042518002080');
    await c.detach();
    // Detaching resumed the guest: the next connection stops it again (T02) and sees the old mode.
    const r = await raw(s);
    await r.waitFrames(1);
    expect(r.frames).toEqual(['$T02thread:p01.01;']);
    r.write('+');
    expect(await r.request('qqemu.PhyMemMode')).toBe('0');
  });

  it('debugger reads and writes set no accessed or dirty bits', async () => {
    const s = await start();
    const c = await client(s);
    const t = s.m.translate(DATA_VA);
    if (!t.ok) throw new Error('the data page is not mapped');
    const pteOfData = t.translation.steps[3]!.address;
    const before = s.m.memory.read64(pteOfData);
    await c.readMemory(DATA_VA, 64);
    await c.writeMemory(DATA_VA, new Uint8Array([1, 2, 3]));
    expect(s.m.memory.read64(pteOfData)).toBe(before);
    expect(before & 0x60n).toBe(0n);
  });
});

describe('breakpoints, watchpoints and stop replies', () => {
  it('Z0 stops before the instruction with T05; inserting twice needs two removals; z0 of nothing is E22', async () => {
    const s = await start();
    const r = await raw(s);
    const at = s.code.address('after_read').toString(16);
    expect(await r.request(`Z0,${at},1`)).toBe('OK');
    expect(await r.request(`Z0,${at},1`)).toBe('OK');
    expect(await r.request('c')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_read'));
    expect(await r.request(`z0,${at},1`)).toBe('OK');
    expect(await r.request('c')).toBe('T05thread:01;');
    expect(s.m.readVirtual(COUNTER_VA, 1)[0]).toBe(2);
    expect(await r.request(`z0,${at},1`)).toBe('OK');
    expect(await r.request(`z0,${at},1`)).toBe('E22');
    // Breakpoints patch nothing: memory shows the original bytes.
    expect(await r.request(`Z1,${at},1`)).toBe('OK');
    expect(await r.request(`m${at},3`)).toBe('48ffc1');
  });

  it('a write watch reports the start address as inserted, with RIP after the access', async () => {
    const s = await start();
    const c = await client(s);
    await c.insertBreakpoint(2, DATA_VA, 0x40);
    const stop = await c.cont();
    expect(stop).toMatchObject({ kind: 'stopped', signal: 5, watch: { kind: 'write', address: DATA_VA } });
    expect(await c.readRegister('rip')).toBe(s.code.address('after_inc'));
    await c.removeBreakpoint(2, DATA_VA, 0x40);
    await expect(c.removeBreakpoint(2, DATA_VA, 0x40)).rejects.toMatchObject({ code: 'E_REPLY', errno: 0x22 });
  });

  it('read and access watches answer rwatch: and awatch: with 16 hex digits', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request(`Z3,${READ_VA.toString(16)},8`)).toBe('OK');
    expect(await r.request('c')).toBe(`T05thread:01;rwatch:${READ_VA.toString(16)};`);
    expect(await r.request(`z3,${READ_VA.toString(16)},8`)).toBe('OK');
    expect(await r.request(`Z4,${COUNTER_VA.toString(16)},1`)).toBe('OK');
    expect(await r.request('c')).toBe(`T05thread:01;awatch:${COUNTER_VA.toString(16)};`);
    expect(await r.request(`Z2,${COUNTER_VA.toString(16)},0`)).toBe('E22');
    expect(await r.request(`Z5,${COUNTER_VA.toString(16)},1`)).toBe('');
    expect(await r.request('Z0,zz,1')).toBe('E22');
  });

  it('? answers T05 whatever the stop, and removes the debugger\'s breakpoints', async () => {
    const s = await start();
    const r = await raw(s);
    const at = s.code.address('after_read').toString(16);
    expect(await r.request(`Z0,${at},1`)).toBe('OK');
    expect(await r.request(`Z2,${COUNTER_VA.toString(16)},8`)).toBe('OK');
    expect(await r.request('?')).toBe('T05thread:01;');
    expect(s.m.breakpoints()).toEqual([]);
    expect(await r.request(`z0,${at},1`)).toBe('E22');
    expect(await r.request(`z2,${COUNTER_VA.toString(16)},8`)).toBe('E22');
  });
});

describe('execution', () => {
  it('s, vCont;s and vCont;s:p1.1;c each execute one instruction and answer T05', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request('s')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('top'));
    expect(await r.request('vCont;s')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_inc'));
    expect(await r.request('vCont;s:p1.1;c:p1.-1')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_read'));
    expect(await r.request(`s${s.code.address('top').toString(16)}`)).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_inc'));
    expect(await r.request('vCont;t')).toBe('E22');
    expect(await r.request('vCont;s:p1.2')).toBe('E22');
  });

  it('without the sstep ENABLE flag a step runs freely (Qqemu.sstep=0)', async () => {
    const s = await start();
    const r = await raw(s);
    expect(await r.request('qqemu.sstepbits')).toBe('ENABLE=1,NOIRQ=2,NOTIMER=4');
    expect(await r.request('qqemu.sstep')).toBe('0x7');
    expect(await r.request(`Z0,${s.code.address('after_read').toString(16)},1`)).toBe('OK');
    expect(await r.request('Qqemu.sstep=0')).toBe('OK');
    expect(await r.request('s')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_read'));
  });

  it('the client steps, continues to a breakpoint, and interrupts a running guest (T02)', async () => {
    const s = await start();
    const c = await client(s);
    expect(await c.step()).toMatchObject({ kind: 'stopped', signal: 5, thread: { pid: 1, tid: 1 } });
    const running = c.cont();
    expect(c.running).toBe(true);
    await sleep(30);
    const counter = s.m.readVirtual(COUNTER_VA, 4);
    expect(new DataView(counter.buffer).getUint32(0, true)).toBeGreaterThan(100);
    const stop = await c.interrupt();
    expect(stop).toMatchObject({ kind: 'stopped', signal: 2 });
    expect(await running).toEqual(stop);
    expect(s.session.state).toBe('paused');
  });

  it('a packet sent while the guest runs stops it (T02) and is lost: no ack, no reply of its own', async () => {
    const s = await start();
    const r = await raw(s);
    r.send('c');
    await r.waitFrames(1);
    expect(r.frames).toEqual(['+']);
    await sleep(20);
    expect(s.session.running).toBe(true);
    r.send('qqemu.PhyMemMode');
    await r.waitFrames(2);
    await sleep(30);
    expect(r.frames).toEqual(['+', '$T02thread:01;']);
    r.write('+');
    expect(await r.request('qqemu.PhyMemMode')).toBe('0');
  });

  it('\\x03 while stopped is ignored', async () => {
    const s = await start();
    const r = await raw(s);
    r.write('\x03');
    await sleep(50);
    expect(r.frames).toEqual([]);
    expect(s.session.state).toBe('prelaunch');
  });

  it('a halted CPU keeps running without answering c; \\x03 stops it; a step on a halted CPU answers T05 in place', async () => {
    const s = await start({ program: haltProgram() });
    const r = await raw(s);
    r.send('c');
    await until(() => s.m.cpu.halted, 'the hlt');
    await sleep(30);
    expect(r.frames).toEqual(['+']);
    expect(s.session.state).toBe('running');
    r.write('\x03');
    await r.waitFrames(2);
    expect(r.frames[1]).toBe('$T02thread:01;');
    r.write('+');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_hlt'));
    expect(await r.request('s')).toBe('T05thread:01;');
    expect(s.m.getRegister('rip')).toBe(s.code.address('after_hlt'));
    expect(hexToText((await r.request('qThreadExtraInfo,p1.1')))).toBe('CPU#0 [halted ]');
  });

  it('a triple fault with reboot=shutdown,shutdown=pause answers T03 and keeps the state; c then answers T03 at once', async () => {
    const s = await start({ program: tripleFaultProgram() });
    const c = await client(s);
    const stop = await c.cont({ timeoutMs: 5000 });
    expect(stop).toMatchObject({ kind: 'stopped', signal: 3 });
    expect(s.session.state).toBe('shutdown');
    expect(await c.readRegister('rip')).toBe(s.code.address('after'));
    expect(await c.readRegister('cr3')).toBe(0x123000n);
    expect(await c.cont({ timeoutMs: 2000 })).toMatchObject({ kind: 'stopped', signal: 3 });
    expect(await c.step({ timeoutMs: 2000 })).toMatchObject({ kind: 'stopped', signal: 3 });
  });

  it('a mode the emulator does not model stops it with T06 (internal-error), and c answers T06 at once', async () => {
    const s = await start();
    const r = await raw(s);
    s.m.setRegister('cr4', 0n);
    expect(await r.request('c')).toBe('T06thread:01;');
    expect(s.session.state).toBe('internal-error');
    expect(await r.request('c')).toBe('T06thread:01;');
  });

  it('connecting to a running guest stops it with an unsolicited T02; connecting to a stopped one sends nothing', async () => {
    const s = await start();
    const quiet = await raw(s);
    await sleep(50);
    expect(quiet.frames).toEqual([]);
    quiet.close();
    await until(() => !s.rsp.connected, 'the first connection to go');
    s.session.cont();
    await sleep(20);
    const c = await client(s);
    expect(c.lastStop).toMatchObject({ kind: 'stopped', signal: 2 });
    expect(s.session.state).toBe('paused');
  });

  it('closing the connection leaves the guest stopped; D resumes it', async () => {
    const s = await start();
    const first = await raw(s);
    expect(await first.request('s')).toBe('T05thread:01;');
    first.close();
    await until(() => !s.rsp.connected, 'the connection to go');
    expect(s.session.state).toBe('debug');
    const r = await raw(s);
    expect(await r.request('D')).toBe('OK');
    expect(s.session.running).toBe(true);
  });

  it('once multiprocess is negotiated, thread ids become p01.01 for every later connection, and a plain D is E22', async () => {
    const s = await start();
    const plain = await raw(s);
    expect(await plain.request('qSupported:swbreak+')).toBe('PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+');
    expect(await plain.request('?')).toBe('T05thread:01;');
    expect(await plain.request('qC')).toBe('QC01');
    plain.close();
    await until(() => !s.rsp.connected, 'the connection to go');
    const c = await client(s);
    expect(await c.request('qC')).toBe('QCp01.01');
    await c.close();
    await until(() => !s.rsp.connected, 'the connection to go');
    const later = await raw(s);
    expect(await later.request('?')).toBe('T05thread:p01.01;');
    expect(await later.request('D')).toBe('E22');
    expect(await later.request('D;1')).toBe('OK');
    expect(s.session.running).toBe(true);
  });

  it('the client detaches (D;1 under multiprocess), removing its breakpoints and resuming the guest', async () => {
    const s = await start();
    const c = await client(s);
    await c.insertBreakpoint(0, s.code.address('after_read'), 1);
    await c.detach();
    expect(s.m.breakpoints()).toEqual([]);
    await until(() => s.session.running, 'the guest to run');
  });

  it('k answers W00 and ends the emulator: both sockets close', async () => {
    const s = await start();
    const q = await QmpClient.connect(s.qmpPath);
    open.push(q);
    const c = await client(s);
    const exit = new Promise((resolve) => c.once('exit', resolve));
    c.request('k').catch(() => undefined);
    expect(await exit).toMatchObject({ kind: 'exited', code: 0 });
    await until(() => c.isClosed && q.closed, 'both connections to close');
    expect(s.session.hasEnded).toBe(true);
  });
});

describe('queries and unsupported packets', () => {
  it("answers thread queries like QEMU and leaves what it does not support empty", async () => {
    const s = await start();
    const c = await client(s);
    expect(await c.request('qAttached')).toBe('1');
    expect(await c.request('qAttached:1')).toBe('1');
    expect(await c.request('qC')).toBe('QCp01.01');
    expect(await c.request('qfThreadInfo')).toBe('mp01.01');
    expect(await c.request('qsThreadInfo')).toBe('l');
    expect(await c.request('Hg0')).toBe('OK');
    expect(await c.request('Hc-1')).toBe('OK');
    expect(await c.request('Hgp0.0')).toBe('OK');
    expect(hexToText(await c.request('qThreadExtraInfo,p1.1'))).toBe('CPU#0 [running]');
    expect(await c.request('qThreadExtraInfo,p1.2')).toBe('E22');
    expect(await c.request('T1')).toBe('OK');
    expect(await c.request('Tp1.3')).toBe('E22');
    for (const p of ['qOffsets', 'qTStatus', 'qSymbol::', 'qXfer:threads:read::0,ffb', 'QNonStop:1', 'qHostInfo', 'jThreadsInfo', 'vFile:open:', 'bc', 'i', '!']) {
      expect(await c.request(p), p).toBe('');
    }
  });
});

describe('the monitor (qRcmd)', () => {
  it('runs HMP commands: output in O packets a line each, then OK; the text parses with src/qmp/hmp', async () => {
    const s = await start();
    const c = await client(s);
    const regs = parseInfoRegisters(await c.monitor('info registers'));
    expect(regs.cpu).toBe(0);
    expect([regs.rip, regs.cr0, regs.cr3, regs.cr4, regs.efer]).toEqual([CODE_VA, 0x80010011n, 0x10000n, 0xa0n, 0xd00n]);
    expect(regs.cs).toEqual({ selector: 8, base: 0n, limit: 0xffffffff, flags: 0xaf9b00 });
    expect(regs.gdt).toEqual({ base: hh(L.gdt), limit: 0x37 });
    expect(regs.tr).toMatchObject({ selector: 0x28, base: BigInt(L.tss) });
    const tlb = parseInfoTlb(await c.monitor('info tlb'));
    expect(tlb.entries).toHaveLength(2048);
    expect(tlb.entries[0]).toMatchObject({ va: 0n, pa: 0n, flags: { write: true, user: false, nx: false, ps: false } });
    expect(tlb.entries[1024]).toMatchObject({ va: 0xffffffff80000000n, pa: 0n });
    const mem = parseInfoMem(await c.monitor('info mem'));
    expect(mem.ranges.map((x) => [x.start, x.end, x.write, x.user])).toEqual([
      [0n, 0x400000n, true, false],
      [0xffffffff80000000n, 0xffffffff80400000n, true, false],
    ]);
    const xp = parseXp(await c.monitor(`xp /2gx 0x${(L.code + 7).toString(16)}`));
    expect(xp.values).toEqual([0x802000182504ff48n, 0x80200020251c8b48n]);
    expect(Buffer.from(xp.bytes.subarray(0, 8)).toString('hex')).toBe('48ff042518002080');
    expect(parseGva2gpa(await c.monitor(`gva2gpa 0x${CODE_VA.toString(16)}`))).toEqual({ mapped: true, gpa: 0x100000n });
    expect(parseGva2gpa(await c.monitor('gva2gpa 0xffff800000000000'))).toEqual({ mapped: false });
    expect(await c.monitor('info status')).toBe('VM status: paused (prelaunch)\r\n');
    expect(await c.monitor('stop')).toBe('');
  });

  it('sends one O packet per line, and reports unknown commands in the text', async () => {
    const s = await start();
    const r = await raw(s);
    const start0 = r.frames.length;
    r.send(`qRcmd,${textToHex('info mem')}`);
    await until(() => r.frames.slice(start0).includes('$OK'), 'the OK');
    const packets = r.frames.slice(start0).filter((f) => f.startsWith('$'));
    expect(packets).toEqual([
      `$O${textToHex('0000000000000000-0000000000400000 0000000000400000 -rw\r\n')}`,
      `$O${textToHex('ffffffff80000000-ffffffff80400000 0000000000400000 -rw\r\n')}`,
      '$OK',
    ]);
    r.write('+++');
    const c2 = await r.request(`qRcmd,${textToHex('nonsense-command')}`);
    expect(hexToText(c2.slice(1))).toBe("unknown command: 'nonsense-command'\r\n");
    expect(await r.request('qRcmd,abc')).toBe('E01');
  });

  it('monitor cont runs the same machine; an unknown command is an error the HMP checker recognises', async () => {
    const s = await start();
    const c = await client(s);
    const text = await c.monitor('nonsense-command');
    expect(() => checkHmpOutput(text, 'nonsense-command')).toThrow(expect.objectContaining({ code: 'E_HMP_UNKNOWN_COMMAND' }));
    await c.monitor('cont');
    expect(s.session.running).toBe(true);
  });
});

describe('one client at a time', () => {
  it('a second connection gets no bytes until the first closes, then its queued packet is answered', async () => {
    const s = await start();
    const first = await client(s);
    s.session.cont();
    const second = await raw(s);
    second.send('?');
    await sleep(100);
    expect(second.frames).toEqual([]);
    expect(s.session.running).toBe(true);
    await first.close();
    await second.waitFrames(3);
    // Served now: the connect stops the running guest (T02), then its '?' is acknowledged and answered.
    expect(second.frames).toEqual(['$T02thread:p01.01;', '+', '$T05thread:p01.01;']);
  });
});

describe('damaged input', () => {
  it('a bad checksum gets -, junk between packets is ignored, and the next packet is answered', async () => {
    const s = await start();
    const r = await raw(s);
    r.write('$qC#00');
    await r.waitFrames(1);
    expect(r.frames).toEqual(['-']);
    r.write('garbage!!');
    r.write('$qC#zz');
    await r.waitFrames(2);
    expect(r.frames[1]).toBe('-');
    expect(await r.request('qC')).toBe('QC01');
  });

  it('a packet cut short by a new $ gets -, and the new one is answered', async () => {
    const s = await start();
    const r = await raw(s);
    r.write(`$qAtt${Buffer.from(encodePacket('qC')).toString('latin1')}`);
    await r.waitFrames(3);
    expect(r.frames).toEqual(['-', '+', '$QC01']);
  });

  it('a packet over the 4094-byte line buffer is dropped without a word, as QEMU drops it', async () => {
    const s = await start();
    const r = await raw(s);
    r.send(`M${DATA_VA.toString(16)},900:${'00'.repeat(0x900)}`);
    await sleep(50);
    expect(r.frames).toEqual([]);
    expect(await r.request('qC')).toBe('QC01');
  });

  it('a stop reply the client acks with - is sent again', async () => {
    const s = await start();
    const r = await raw(s);
    r.send('s');
    await r.waitFrames(2);
    r.write('-');
    await r.waitFrames(3);
    expect(r.frames).toEqual(['+', '$T05thread:01;', '$T05thread:01;']);
    expect(parseStopReply(r.frames[2]!.slice(1))).toMatchObject({ signal: 5 });
  });
});
