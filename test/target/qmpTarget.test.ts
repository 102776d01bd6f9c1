/**
 * QmpTarget against a scripted QMP server in QEMU's manner: registers from `info registers`,
 * frames by `xp` one at a time and by `pmemsave` for runs, nothing asked outside RAM, the per-stop
 * cache used only while the guest is stopped (STOP and RESUME events switch it), a running guest
 * read as it runs with a note, and a busy socket refused in one line.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SparseMemory } from '../../src/image/sparseMemory.js';
import { QmpTarget, RUNNING_NOTE } from '../../src/target/qmpTarget.js';
import { TargetError } from '../../src/target/target.js';
import { FakeQmpServer, GREETING, until, type FakeConnection, type Received } from '../qmp/fakeQmp.js';

const INFO_REGISTERS = [
  'RAX=0000000000110000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000',
  'RSI=0000000000000000 RDI=0000000000000000 RBP=0000000000000000 RSP=ffffffff80104000',
  'R8 =0000000000000000 R9 =0000000000000000 R10=0000000000000000 R11=0000000000000000',
  'R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000',
  'RIP=ffffffff80101007 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0',
  'ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'CS =0018 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]',
  'SS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'DS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'FS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'GS =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]',
  'LDT=0000 0000000000000000 0000ffff 00008200 DPL=0 LDT',
  'TR =0000 0000000000000000 0000ffff 00008b00 DPL=0 TSS64-busy',
  'GDT=     0000000000100078 0000001f',
  'IDT=     0000000000000000 00000000',
  'CR0=80010011 CR2=0000000000000000 CR3=0000000000110000 CR4=000000a0',
  'DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000 ',
  'DR6=00000000ffff0ff0 DR7=0000000000000400',
  'EFER=0000000000000d00',
  '',
].join('\r\n');

const MTREE = [
  'FlatView #0',
  ' AS "memory", root: system',
  ' Root memory region: system',
  '  0000000000000000-00000000007fffff (prio 0, ram): pc.ram',
  '  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic',
  '',
].join('\r\n');

/** `xp /Ngx ADDR` as QEMU prints it: two qwords a line. */
function xp(mem: SparseMemory, count: number, at: number): string {
  let out = '';
  for (let i = 0; i < count; i += 2) {
    const a = at + i * 8;
    const q = (o: number) => `0x${mem.read64(o).toString(16).padStart(16, '0')}`;
    out += `${a.toString(16).padStart(16, '0')}: ${q(a)}${i + 1 < count ? ` ${q(a + 8)}` : ''}\r\n`;
  }
  return out;
}

/** Serves one connection like QEMU 7.2 does; records the HMP command lines and QMP commands. */
async function serve(c: FakeConnection, mem: SparseMemory, status: { running: boolean }, log: string[]): Promise<void> {
  c.send(GREETING);
  for (;;) {
    const r: Received = await c.next();
    const args = r.arguments ?? {};
    if (r.execute === 'human-monitor-command') {
      const line = String(args['command-line']);
      log.push(line);
      const x = /^xp \/(\d+)gx 0x([0-9a-f]+)$/.exec(line);
      if (x) c.reply(r, xp(mem, Number(x[1]), parseInt(x[2]!, 16)));
      else if (line === 'info registers') c.reply(r, INFO_REGISTERS);
      else if (line === 'info mtree -f') c.reply(r, MTREE);
      else c.reply(r, `unknown command: '${line}'\r\n`);
      continue;
    }
    log.push(r.execute);
    if (r.execute === 'query-status') c.reply(r, { status: status.running ? 'running' : 'paused', singlestep: false, running: status.running });
    else if (r.execute === 'pmemsave') {
      writeFileSync(String(args.filename), mem.read(Number(args.val), Number(args.size)));
      c.reply(r, {});
    } else c.reply(r, {});
  }
}

/** Fills frame `pa` with its own address in every qword's low half. */
function stamp(mem: SparseMemory, pa: number): void {
  for (let i = 0; i < 4096; i += 8) mem.write64(pa + i, BigInt(pa + i));
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(running: boolean) {
  const server = await FakeQmpServer.start();
  cleanups.push(() => server.stop());
  const mem = new SparseMemory(8 << 20);
  const log: string[] = [];
  const state = { running };
  let conn: FakeConnection | null = null;
  void server.nextConnection().then((c) => {
    conn = c;
    void serve(c, mem, state, log);
  });
  const target = await QmpTarget.open(server.endpoint);
  cleanups.push(() => target.close());
  return { target, mem, log, event: (name: string) => conn!.event(name) };
}

describe('QmpTarget on a QMP server like QEMU 7.2', () => {
  it('reads a stopped guest once per stop: registers, RAM layout and frames; xp for one frame, pmemsave for a run', async () => {
    const { target, mem, log } = await started(false);
    for (const pa of [0x110000, 0x111000, 0x112000, 0x200000]) stamp(mem, pa);
    const cpu = await target.cpuState();
    expect([cpu.cr3, cpu.efer, cpu.gdtr, cpu.notes]).toEqual([0x110000n, 0xd00n, { base: 0x100078n, limit: 0x1f }, []]);
    const frames = await target.frames([0x200000, 0x110000, 0x111000, 0x112000, 0xfec00000, 0x900000]);
    expect(frames.map((f) => f?.getUint32(8, true) ?? null)).toEqual([0x200008, 0x110008, 0x111008, 0x112008, null, null]);
    await target.cpuState();
    await target.frames([0x111000, 0x200000]);
    expect(log.slice(2)).toEqual(['info registers', 'info mtree -f', 'pmemsave', 'xp /512gx 0x200000']);
  });

  it('reads a running guest as it runs, with a note, and caches only once a STOP event says it stands still', async () => {
    const { target, mem, log, event } = await started(true);
    stamp(mem, 0x5000);
    expect(target.guestRunning).toBe(true);
    expect((await target.cpuState()).notes).toEqual([RUNNING_NOTE]);
    await target.frames([0x5000]);
    await target.frames([0x5000]);
    expect(log.filter((l) => l.startsWith('xp'))).toHaveLength(2);
    event('STOP');
    await until(() => !target.guestRunning);
    expect((await target.cpuState()).notes).toEqual([]);
    await target.frames([0x5000]);
    await target.frames([0x5000]);
    expect(log.filter((l) => l.startsWith('xp'))).toHaveLength(3);
    event('RESUME');
    await until(() => target.guestRunning);
    await target.frames([0x5000]);
    expect(log.filter((l) => l.startsWith('xp'))).toHaveLength(4);
  });

  it('refuses a QMP socket another client holds, in one line', async () => {
    const server = await FakeQmpServer.start();
    cleanups.push(() => server.stop());
    const e = await QmpTarget.open(server.endpoint, { connectMs: 100 }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(TargetError);
    expect([(e as TargetError).code, (e as TargetError).message]).toEqual([
      'E_OPEN',
      `no QMP greeting from ${server.endpoint} in 100 ms: the QMP socket is in use by another client (QEMU serves one at a time; close the other one, or give QEMU a second -qmp socket)`,
    ]);
  });
});
