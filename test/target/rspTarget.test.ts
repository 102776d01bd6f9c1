/**
 * RspTarget against a scripted gdbstub that behaves like QEMU 7.2 (target.xml, `g`, qRcmd monitor
 * commands, PhyMemMode, `m`/`M`, `D`): one `g` per stop, GDTR/IDTR/TR from the monitor, a level of
 * frames fetched in one pipelined round, frames outside RAM never asked for, the per-stop cache and
 * what drops it, leaving the guest as found (PhyMemMode restored; `D` only when connecting stopped
 * it), and one-line errors for a refused, busy or lost gdbstub.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import { bytesToHex, hexToBytes, hexToText, textToHex } from '../../src/rsp/codec.js';
import { RspTarget, connectGdbstub } from '../../src/target/rspTarget.js';
import { TargetError } from '../../src/target/target.js';
import { FakeStub, HANDLED, QEMU_SUPPORTED } from '../rsp/fakeStub.js';

const ANNEXES: Record<string, string> = {
  'target.xml': '<?xml version="1.0"?><target><architecture>i386:x86-64</architecture><xi:include href="core.xml"/></target>',
  'core.xml':
    '<feature name="org.gnu.gdb.i386.core"><reg name="rax" bitsize="64" regnum="0"/><reg name="rsp" bitsize="64"/>' +
    '<reg name="rip" bitsize="64" type="code_ptr"/><reg name="eflags" bitsize="32"/><reg name="cs" bitsize="32"/>' +
    '<!-- <reg name="cs_base" bitsize="64"/> --><reg name="cr0" bitsize="64"/><reg name="cr2" bitsize="64"/>' +
    '<reg name="cr3" bitsize="64"/><reg name="cr4" bitsize="64"/><reg name="efer" bitsize="64"/></feature>',
};
const REGS: [string, number][] = [
  ['rax', 64],
  ['rsp', 64],
  ['rip', 64],
  ['eflags', 32],
  ['cs', 32],
  ['cr0', 64],
  ['cr2', 64],
  ['cr3', 64],
  ['cr4', 64],
  ['efer', 64],
];

const INFO_REGISTERS = [
  'RAX=0000000000110000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000',
  'RSI=0000000000000000 RDI=0000000000000000 RBP=0000000000000000 RSP=ffffffff80104000',
  'R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000',
  'R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000',
  'RIP=ffffffff80101007 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  ...['ES ', 'CS ', 'SS ', 'DS ', 'FS ', 'GS '].map((s) =>
    s === 'CS ' ? 'CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]' : `${s}=0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]`,
  ),
  'LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT',
  'TR =0028 ffffffff80105000 00000067 00008b00 DPL=0 TSS64-busy',
  'GDT=     0000000000100078 0000002f',
  'IDT=     ffffffff80106000 00000fff',
  'CR0=80010011 CR2=0000000000000000 CR3=0000000000110000 CR4=000000a0',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000d00',
  '',
].join('\r\n');

/** 8 MiB of RAM and the BIOS; nothing else is memory. */
const MTREE = [
  'FlatView #0',
  ' AS "memory", root: system',
  ' Root memory region: system',
  '  0000000000000000-00000000007fffff (prio 0, ram): pc.ram',
  '  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic',
  '  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios',
  '',
].join('\r\n');

const MONITOR: Record<string, string> = {
  'info registers': INFO_REGISTERS,
  'info mtree -f': MTREE,
  'qom-get /machine/unattached/device[0] type': '"qemu64-x86_64-cpu"\r\n',
  'qom-get /machine/unattached/device[0] phys-bits': '40\r\n',
  'qom-get /machine/unattached/device[0] pdpe1gb': 'false\r\n',
};

/** A gdbstub in QEMU's manner over a small guest: registers, RAM, monitor, PhyMemMode. */
class FakeQemu {
  readonly mem = new SparseMemory(16 << 20);
  readonly regs = new Map<string, bigint>([
    ['rax', 0x110000n],
    ['rsp', 0xffffffff80104000n],
    ['rip', 0xffffffff80101007n],
    ['eflags', 0x46n],
    ['cs', 0x18n],
    ['cr0', 0x80010011n],
    ['cr2', 0n],
    ['cr3', 0x110000n],
    ['cr4', 0xa0n],
    ['efer', 0xd00n],
  ]);
  physical = false;
  /** Replies to `m` are held until this returns true (then all are sent, in order). */
  holdMemory: ((received: string[]) => boolean) | null = null;
  private held: string[] = [];

  handle = (p: string, stub: FakeStub): string | string[] | null | typeof HANDLED => {
    if (p.startsWith('qSupported')) return QEMU_SUPPORTED;
    if (p === 'vCont?') return 'vCont;c;C;s;S';
    const x = /^qXfer:features:read:([^:]+):([0-9a-f]+),([0-9a-f]+)$/.exec(p);
    if (x) {
      const text = ANNEXES[x[1]!] ?? '';
      const at = parseInt(x[2]!, 16);
      const chunk = text.slice(at, at + parseInt(x[3]!, 16));
      return (at + chunk.length >= text.length ? 'l' : 'm') + chunk;
    }
    if (p === 'g') return REGS.map(([n, bits]) => le(this.regs.get(n)!, bits)).join('');
    if (p.startsWith('P')) {
      const [num, hex] = p.slice(1).split('=');
      const [name] = REGS[parseInt(num!, 16)]!;
      this.regs.set(name, BigInt(`0x${bytesToHex(hexToBytes(hex!).reverse())}`));
      return 'OK';
    }
    if (p.startsWith('qRcmd,')) {
      const out = MONITOR[hexToText(p.slice(6))] ?? `unknown command: '${hexToText(p.slice(6))}'\r\n`;
      return [...out.split(/(?<=\r\n)/).map((l) => `O${textToHex(l)}`), 'OK'];
    }
    if (p === 'qqemu.PhyMemMode') return this.physical ? '1' : '0';
    if (p.startsWith('Qqemu.PhyMemMode:')) {
      this.physical = p.endsWith('1');
      return 'OK';
    }
    const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(p);
    if (m) {
      if (!this.physical) return 'E14';
      const reply = bytesToHex(this.mem.read(parseInt(m[1]!, 16), parseInt(m[2]!, 16)));
      if (!this.holdMemory) return reply;
      this.held.push(reply);
      stub.sendRaw('+');
      if (this.holdMemory(stub.received)) {
        for (const r of this.held.splice(0)) stub.send(r);
      }
      return HANDLED;
    }
    const w = /^M([0-9a-f]+),([0-9a-f]+):([0-9a-f]*)$/.exec(p);
    if (w) {
      this.mem.write(parseInt(w[1]!, 16), hexToBytes(w[3]!));
      return 'OK';
    }
    if (p === 'D' || p.startsWith('D;')) return 'OK';
    return '';
  };
}

function le(v: bigint, bits: number): string {
  let out = '';
  for (let i = 0; i < bits / 8; i++) out += Number((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, '0');
  return out;
}

/** Fills frame `pa` with its own address in every dword, so a misplaced frame shows. */
function stamp(mem: SparseMemory, pa: number): void {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  for (let i = 0; i < 4096; i += 4) v.setUint32(i, pa + i, true);
  mem.write(pa, b);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(options: { running?: boolean } = {}): Promise<{ stub: FakeStub; qemu: FakeQemu; target: RspTarget }> {
  const qemu = new FakeQemu();
  const stub = await FakeStub.listen(qemu.handle);
  cleanups.push(() => stub.close());
  // QEMU stops a running VM as a client connects and says so before anything else.
  if (options.running) void stub.client().then(() => stub.send('T02thread:01;'));
  const target = await RspTarget.open(stub.endpoint, { connectMs: 2000 });
  cleanups.push(() => target.close());
  return { stub, qemu, target };
}

const count = (stub: FakeStub, re: RegExp) => stub.received.filter((p) => re.test(p)).length;

async function failure(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TargetError);
  return e as TargetError;
}

describe('RspTarget on a gdbstub like QEMU 7.2', () => {
  it('reads the registers with one g per stop, and GDTR/IDTR/TR through the monitor at the same stop', async () => {
    const { stub, target } = await started();
    const cpu = await target.cpuState();
    expect([cpu.cr0, cpu.cr3, cpu.cr4, cpu.efer, cpu.rip, cpu.rflags, cpu.gpr.rax]).toEqual([0x80010011n, 0x110000n, 0xa0n, 0xd00n, 0xffffffff80101007n, 0x46n, 0x110000n]);
    expect([cpu.gdtr, cpu.idtr, cpu.tr?.base, cpu.cs?.flags]).toEqual([
      { base: 0x100078n, limit: 0x2f },
      { base: 0xffffffff80106000n, limit: 0xfff },
      0xffffffff80105000n,
      0xaf9b00,
    ]);
    expect(cpu.notes[0]).toMatch(/^GDTR, IDTR, TR and segment bases: from `info registers` through the monitor of the gdbstub at 127\.0\.0\.1:\d+/);
    await target.cpuState();
    expect(count(stub, /^g$/)).toBe(1);
    await target.writeRegister('cr3', 0x118000n);
    expect((await target.cpuState()).cr3).toBe(0x118000n);
    expect(count(stub, /^g$/)).toBe(2);
  });

  it('asks QEMU for MAXPHYADDR and 1 GiB pages through QOM, once', async () => {
    const { stub, target } = await started();
    expect(await target.cpuFeatures()).toEqual({ maxPhyAddr: 40, gbPages: false });
    await target.cpuFeatures();
    expect(count(stub, /^qRcmd,/)).toBe(3);
  });

  it('reads a batch of frames in one pipelined round: every m is out before the stub answers any', async () => {
    const { stub, qemu, target } = await started();
    const pas = Array.from({ length: 24 }, (_, i) => 0x200000 + i * 0x1000);
    for (const pa of pas) stamp(qemu.mem, pa);
    await target.ram(); // the monitor's answers first, so only m packets are held below
    await target.frames([0x100000]); // PhyMemMode set
    qemu.holdMemory = (received) => received.filter((p) => p.startsWith('m')).length >= 2 + pas.length * 2;
    const frames = await target.frames(pas);
    frames.forEach((f, i) => {
      expect(f?.getUint32(0, true)).toBe(pas[i]);
      expect(f?.getUint32(4092, true)).toBe(pas[i]! + 4092);
    });
    expect(count(stub, /^m/)).toBe(2 + pas.length * 2); // 0x800 bytes a packet
  });

  it('gives null for frames outside RAM and ROM without asking, and remembers frames until something moves', async () => {
    const { stub, qemu, target } = await started();
    stamp(qemu.mem, 0x5000);
    const [inRam, mmio, past] = await target.frames([0x5000, 0xfec00000, 0x900000]);
    expect([inRam?.getUint32(8, true), mmio, past]).toEqual([0x5008, null, null]);
    expect(stub.received.filter((p) => p.startsWith('m'))).toEqual(['m5000,800', 'm5800,800']);
    await target.frames([0x5000]);
    expect(count(stub, /^m/)).toBe(2);
    await target.writePhysical(0x5000n, Uint8Array.of(0xaa, 0xbb));
    expect((await target.frames([0x5000]))[0]?.getUint16(0, true)).toBe(0xbbaa);
    expect(count(stub, /^m/)).toBe(4);
    stub.send('T05thread:01;'); // the guest ran behind pagewalk's back and stopped again
    await target.client.request('qqemu.PhyMemMode'); // a round trip: the stop has been seen
    await target.frames([0x5000]);
    expect(count(stub, /^m/)).toBe(6);
  });

  it('refuses physical reads outside RAM and ROM, naming the memory there is', async () => {
    const { target } = await started();
    const e = await failure(target.readPhysical(0x7ff000n, 0x2000));
    expect([e.code, e.message]).toEqual(['E_UNREADABLE', 'physical 0x7ff000+0x2000 is not RAM or ROM of this guest (its memory is 0x0-0x7fffff, 0xfffc0000-0xffffffff)']);
  });

  it('leaves a stopped guest stopped: PhyMemMode back to 0, the socket closed without D', async () => {
    const { stub, qemu, target } = await started();
    expect(target.resumesOnClose).toBe(false);
    await target.frames([0x1000]);
    expect(qemu.physical).toBe(true);
    await target.close();
    await target.close();
    expect(qemu.physical).toBe(false);
    expect(stub.received.slice(-2)).toEqual(['m1800,800', 'Qqemu.PhyMemMode:0']);
    expect(count(stub, /^D/)).toBe(0);
  });

  it('resumes a guest that connecting stopped (the T02 before any reply): PhyMemMode restored, then D;PID', async () => {
    const { stub, qemu, target } = await started({ running: true });
    expect(target.resumesOnClose).toBe(true);
    await target.frames([0x1000]);
    await target.close();
    expect(qemu.physical).toBe(false);
    expect(stub.received.slice(-3)).toEqual(['Qqemu.PhyMemMode:0', 'qC', 'D;1']); // multiprocess was negotiated: D;PID
  });

  it('a PhyMemMode already on stays on, and nothing is restored', async () => {
    const qemu = new FakeQemu();
    qemu.physical = true;
    const stub = await FakeStub.listen(qemu.handle);
    cleanups.push(() => stub.close());
    const target = await RspTarget.open(stub.endpoint);
    await target.frames([0x1000]);
    await target.close();
    expect(qemu.physical).toBe(true);
    expect(count(stub, /^Qqemu/)).toBe(0);
  });

  it('turns a connection lost in the middle of a batch into E_LOST, and closes quietly after it', async () => {
    const { stub, qemu, target } = await started();
    await target.frames([0x1000]);
    qemu.holdMemory = (received) => {
      if (received.filter((p) => p.startsWith('m')).length >= 6) stub.hangUp();
      return false;
    };
    const e = await failure(target.frames([0x2000, 0x3000, 0x4000]));
    expect(e.code).toBe('E_LOST');
    expect(e.message).toMatch(/^lost the gdbstub at 127\.0\.0\.1:\d+: the connection to 127\.0\.0\.1:\d+ is closed/);
    await target.close();
    const after = await failure(target.cpuState());
    expect(after.code).toBe('E_LOST');
  });
});

describe('connecting to a gdbstub', () => {
  let silent: Server | null = null;
  const held: Socket[] = [];
  afterEach(async () => {
    for (const s of held.splice(0)) s.destroy();
    await new Promise<void>((r) => (silent ? silent.close(() => r()) : r()));
    silent = null;
  });

  it('reports a stub that accepts the connection but says nothing as in use by another client', async () => {
    silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const e = await failure(connectGdbstub(`127.0.0.1:${port}`, { connectMs: 150 }));
    expect([e.code, e.message]).toEqual([
      'E_OPEN',
      `the gdbstub at 127.0.0.1:${port} is in use by another client (GDB?): it accepted the connection but sent nothing in 150 ms`,
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('recognises a socket that speaks another protocol (QMP given as --gdb) by its first bytes', async () => {
    const greeting = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}}}\r\n';
    silent = createServer((s) => {
      held.push(s);
      s.write(greeting);
    });
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const e = await failure(connectGdbstub(`127.0.0.1:${port}`));
    expect([e.code, e.message]).toEqual(['E_FORMAT', `127.0.0.1:${port} is not a gdbstub: it sent '${greeting.slice(0, 40)}' (a QMP socket? pass it as --qmp)`]);
  });

  it('reports a refused connection in one line', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const e = await failure(connectGdbstub(`127.0.0.1:${port}`));
    expect([e.code, e.message]).toEqual(['E_OPEN', `cannot connect to 127.0.0.1:${port}: connection refused (is QEMU running with -gdb on that address?)`]);
  });
});
