/**
 * The generated multiboot test kernel. Without QEMU: its layout, its code decoded back, its tables
 * walked by pagewalk, and what it refuses. With real QEMU (qemu-system-x86_64, TCG): it boots, prints
 * its marker on COM1, runs the CR3 loop in the higher half with the registers the manifest promises,
 * and `info tlb` shows exactly the mappings the test built, which pagewalk's walk agrees with.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMultibootHeader } from '../../src/image/multiboot.js';
import type { PageTables } from '../../src/image/pageTables.js';
import { TestKernelError, buildTestKernel, mapTestKernel, type TestKernel, type TestKernelOptions } from '../../src/image/testKernel.js';
import { pagingContext, type PagingContext } from '../../src/paging/mode.js';
import { walk } from '../../src/paging/walk.js';
import { describeQemu, humanMonitor, startQemu, untilShutdown, waitForFileText, type QemuProcess } from '../helpers/qemu.js';

const LISTING = `
entry:
0000000000100000  fa                      cli
0000000000100001  fc                      cld
0000000000100002  890500201000            mov [0x102000], eax
0000000000100008  891d04201000            mov [0x102004], ebx
000000000010000e  0f011598001000          lgdt [0x100098]
0000000000100015  0f011d9e001000          lidt [0x10009e]
000000000010001c  0f20e0                  mov eax, cr4
000000000010001f  81c8a0000000            or eax, 0xa0
0000000000100025  0f22e0                  mov cr4, eax
0000000000100028  b800001100              mov eax, 0x110000
000000000010002d  0f22d8                  mov cr3, eax
0000000000100030  b9800000c0              mov ecx, 0xc0000080
0000000000100035  0f32                    rdmsr
0000000000100037  81c800090000            or eax, 0x900
000000000010003d  0f30                    wrmsr
000000000010003f  0f20c0                  mov eax, cr0
0000000000100042  81c800000180            or eax, 0x80010000
0000000000100048  0f22c0                  mov cr0, eax
000000000010004b  ea520010001800          jmp 0x18:0x100052
long_mode:
0000000000100052  b810000000              mov eax, 0x10
0000000000100057  8ed8                    mov ds, eax
0000000000100059  8ec0                    mov es, eax
000000000010005b  8ed0                    mov ss, eax
000000000010005d  8ee0                    mov fs, eax
000000000010005f  8ee8                    mov gs, eax
0000000000100061  48c7c400401080          mov rsp, 0xffffffff80104000
0000000000100068  48c7c040101080          mov rax, 0xffffffff80101040
000000000010006f  ffe0                    jmp rax
0000000000100071  00000000000000          align 8
gdt:
0000000000100078  0000000000000000ffff..  dq 0x0, 0xcf9b000000ffff, 0xcf93000000ffff, 0xaf9b000000ffff
gdt_end:
gdtr:
0000000000100098  1f00                    dw gdt_end-gdt-0x1
000000000010009a  78001000                dd gdt
idtr:
000000000010009e  0000                    dw 0x0
00000000001000a0  00000000                dd 0x0
cr3_loop:
ffffffff80101000  488b0509100000          mov rax, [rel 0xffffffff80102010]
cr3_write:
ffffffff80101007  0f22d8                  mov cr3, rax
after_cr3_write:
ffffffff8010100a  48ff0507100000          inc qword [rel 0xffffffff80102018]
ffffffff80101011  488b0528100000          mov rax, [rel 0xffffffff80102040]
ffffffff80101018  4885c0                  test rax, rax
ffffffff8010101b  741f                    je 0xffffffff8010103c
ffffffff8010101d  488b0d24100000          mov rcx, [rel 0xffffffff80102048]
ffffffff80101024  4883f901                cmp rcx, 1
ffffffff80101028  740b                    je 0xffffffff80101035
ffffffff8010102a  4883f902                cmp rcx, 2
ffffffff8010102e  740a                    je 0xffffffff8010103a
touch_read:
ffffffff80101030  488b08                  mov rcx, [rax]
ffffffff80101033  eb07                    jmp 0xffffffff8010103c
touch_write:
ffffffff80101035  488908                  mov [rax], rcx
ffffffff80101038  eb02                    jmp 0xffffffff8010103c
touch_exec:
ffffffff8010103a  ffd0                    call rax
touch_done:
ffffffff8010103c  f390                    pause
ffffffff8010103e  ebc0                    jmp 0xffffffff80101000
cr3_loop_end:
hh_entry:
ffffffff80101040  66baf903                mov dx, 0x3f9
ffffffff80101044  b000                    mov al, 0
ffffffff80101046  ee                      out dx, al
ffffffff80101047  66bafb03                mov dx, 0x3fb
ffffffff8010104b  b080                    mov al, 0x80
ffffffff8010104d  ee                      out dx, al
ffffffff8010104e  66baf803                mov dx, 0x3f8
ffffffff80101052  b001                    mov al, 1
ffffffff80101054  ee                      out dx, al
ffffffff80101055  66baf903                mov dx, 0x3f9
ffffffff80101059  b000                    mov al, 0
ffffffff8010105b  ee                      out dx, al
ffffffff8010105c  66bafb03                mov dx, 0x3fb
ffffffff80101060  b003                    mov al, 3
ffffffff80101062  ee                      out dx, al
ffffffff80101063  66bafa03                mov dx, 0x3fa
ffffffff80101067  b0c7                    mov al, 0xc7
ffffffff80101069  ee                      out dx, al
ffffffff8010106a  66bafc03                mov dx, 0x3fc
ffffffff8010106e  b003                    mov al, 3
ffffffff80101070  ee                      out dx, al
ffffffff80101071  488d35a80f0000          lea rsi, [rel 0xffffffff80102020]
ffffffff80101078  b920000000              mov ecx, 0x20
marker_next:
ffffffff8010107d  66bafd03                mov dx, 0x3fd
marker_wait:
ffffffff80101081  ec                      in al, dx
ffffffff80101082  f6c020                  test al, 0x20
ffffffff80101085  74fa                    je 0xffffffff80101081
ffffffff80101087  66baf803                mov dx, 0x3f8
ffffffff8010108b  ac                      lodsb
ffffffff8010108c  ee                      out dx, al
ffffffff8010108d  ffc9                    dec ecx
ffffffff8010108f  75ec                    jne 0xffffffff8010107d
ffffffff80101091  e96affffff              jmp 0xffffffff80101000
ffffffff80101096  cccccccccccccccccccc..  align 4096
boot_magic:
ffffffff80102000  00000000                dd 0x0
boot_info:
ffffffff80102004  00000000                dd 0x0
boot_cr3:
ffffffff80102008  0000110000000000        dq 0x110000
cr3_slot:
ffffffff80102010  0000110000000000        dq 0x110000
loop_count:
ffffffff80102018  0000000000000000        dq 0x0
marker:
ffffffff80102020  7061676577616c6b2074..  db "pagewalk test kernel: long mode\\n"
marker_end:
touch_slot:
ffffffff80102040  0000000000000000        dq 0x0
touch_kind:
ffffffff80102048  0000000000000000        dq 0x0
ffffffff80102050  00000000000000000000..  align 4096
stack:
ffffffff80103000  00000000000000000000..  zero 4096
stack_top:
`.slice(1, -1);

/** bigint and number fields as hex strings, for goldens that read like the listing. */
function hexed(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' || typeof x === 'number' ? `0x${x.toString(16)}` : x)));
}

function contextOf(k: TestKernel, cr3 = k.manifest.cr3): PagingContext {
  return pagingContext({ cr0: k.manifest.cr0, cr3, cr4: k.manifest.cr4, efer: k.manifest.efer });
}

/** Tables with one of each kind of mapping: 4 KiB, 2 MiB and 1 GiB pages, NX, user, read-only, a hole. */
function richTables(pt: PageTables): void {
  mapTestKernel(pt);
  pt.mapRange(0x200000n, 0x200000, 4 << 20, 2 << 20, { nx: true }); // identity 2-6 MiB in 2 MiB pages
  pt.map(0xffff800000000000n, 0, 1 << 30, { nx: true, global: true }); // the first GiB of a direct map
  pt.map(0x40000000n, 0x800000, 0x1000, { user: true });
  pt.map(0x40002000n, 0x801000, 0x1000, { user: true, write: false, nx: true }); // 0x40001000 is a hole
}

describe('buildTestKernel', () => {
  it('places everything where the manifest says (the addresses QEMU-FACTS quotes)', () => {
    expect(hexed(buildTestKernel().manifest)).toEqual({
      mode: '4-level',
      entry: '0x100000',
      longModeEntry: '0x100052',
      higherHalfEntry: '0xffffffff80101040',
      loop: '0xffffffff80101000',
      cr3Write: '0xffffffff80101007',
      afterCr3Write: '0xffffffff8010100a',
      loopEnd: '0xffffffff80101040',
      cr3Slot: { va: '0xffffffff80102010', pa: '0x102010' },
      loopCount: { va: '0xffffffff80102018', pa: '0x102018' },
      touchSlot: { va: '0xffffffff80102040', pa: '0x102040' },
      touchKind: { va: '0xffffffff80102048', pa: '0x102048' },
      touch: { read: '0xffffffff80101030', write: '0xffffffff80101035', exec: '0xffffffff8010103a' },
      bootInfo: { va: '0xffffffff80102000', pa: '0x102000' },
      stackTop: '0xffffffff80104000',
      gdt: { base: '0x100078', limit: '0x1f' },
      selectors: { code32: '0x8', data: '0x10', code64: '0x18' },
      cr3: '0x110000',
      spaces: {},
      slotCr3: '0x110000',
      cr0: '0x80010011',
      cr4: '0xa0',
      efer: '0xd00',
      marker: 'pagewalk test kernel: long mode',
      tableFrames: { start: '0x110000', end: '0x117000' },
    });
  });

  it('enters long mode as a loader would, then loops over mov cr3 (decoded back)', () => {
    expect(buildTestKernel().listing).toBe(LISTING);
  });

  it('maps the kernel with the rights it needs and nothing else (walked by pagewalk)', () => {
    const k = buildTestKernel();
    const ctx = contextOf(k);
    const page = (va: bigint) => {
      const t = walk(k.mem, ctx, va).translation;
      return t && { pa: `0x${t.pa.toString(16)}`, size: t.pageSize, ...t.rights, global: t.global };
    };
    expect(page(0x100000n)).toEqual({ pa: '0x100000', size: 4096, write: true, user: false, execute: true, global: false });
    expect(page(0xffffffff80101000n)).toEqual({ pa: '0x101000', size: 4096, write: false, user: false, execute: true, global: true });
    expect(page(0xffffffff80102018n)).toEqual({ pa: '0x102018', size: 4096, write: true, user: false, execute: false, global: true });
    expect(page(0xffffffff80103ff8n)).toEqual({ pa: '0x103ff8', size: 4096, write: true, user: false, execute: false, global: true });
    for (const va of [0x101000n, 0xfffn, 0xffffffff80100000n, 0xffffffff80104000n]) expect(page(va), `0x${va.toString(16)}`).toBeNull();
  });

  it('writes the kernel pages and the tables into the ELF at their physical addresses', () => {
    const k = buildTestKernel({ tables: richTables });
    const dv = new DataView(k.elf.buffer);
    expect(dv.getUint32(24, true)).toBe(0x100000); // e_entry
    const loads = Array.from({ length: dv.getUint16(44, true) }, (_, i) => {
      const p = 52 + i * 32;
      return { offset: dv.getUint32(p + 4, true), pa: dv.getUint32(p + 12, true), size: dv.getUint32(p + 16, true) };
    });
    expect(loads.map((l) => [l.pa, l.size])).toEqual([
      [0x100000, 0x4000],
      [0x110000, 0xa000], // 10 tables: 7 for the kernel, 1 PDPT for the direct map, PD + PT for the user pages
    ]);
    for (const l of loads) {
      expect(Buffer.from(k.elf.subarray(l.offset, l.offset + l.size)).equals(Buffer.from(k.mem.read(l.pa, l.size)))).toBe(true);
    }
    expect(findMultibootHeader(k.elf)).toEqual({ offset: 116, flags: 3 });
  });

  it('builds other address spaces, and can start the loop on one of them', () => {
    const k = buildTestKernel({ spaces: { alt: (pt) => mapTestKernel(pt, { identity: 0x200000, higherHalf: 0x200000 }) }, slot: 'alt' });
    expect(hexed([k.manifest.cr3, k.manifest.spaces, k.manifest.slotCr3])).toEqual(['0x110000', { alt: '0x117000' }, '0x117000']);
    expect(k.mem.read64(k.manifest.cr3Slot.pa)).toBe(0x117000n);
    const alt = contextOf(k, 0x117000n);
    expect(walk(k.mem, alt, 0xffffffff80101007n).translation).toMatchObject({ pa: 0x101007n, pageSize: 2 << 20, global: true });
    expect(walk(k.mem, alt, 0x1ff000n).translation).toMatchObject({ pa: 0x1ff000n, pageSize: 2 << 20 });
  });

  it('5-level paging: CR4.LA57 is set by the entry and the tables start with a PML5', () => {
    const k = buildTestKernel({ mode: '5-level' });
    expect(k.manifest.cr4).toBe(0x10a0n);
    expect(k.listing).toContain('000000000010001f  81c8a0100000            or eax, 0x10a0');
    expect(walk(k.mem, contextOf(k), k.manifest.cr3Write).steps.map((s) => s.level)).toEqual(['PML5', 'PML4', 'PDPT', 'PD', 'PT']);
  });

  const refuses = (options: TestKernelOptions, code: string, message: string) => {
    let error: unknown;
    try {
      buildTestKernel(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TestKernelError);
    expect((error as TestKernelError).code).toBe(code);
    expect((error as TestKernelError).message).toBe(message);
  };

  it('refuses main tables the kernel cannot run on, saying why in pagewalk words', () => {
    refuses(
      { tables: (pt) => mapTestKernel(pt, { higherHalf: 'none' }) },
      'E_UNMAPPED',
      'the main tables do not let the kernel use the higher-half code at 0xffffffff80101040 (exec): PML4[511] at 0x110ff8 is not present (P=0): 0xffffffff80101040 is not mapped',
    );
    refuses(
      {
        tables: (pt) => {
          mapTestKernel(pt);
          pt.setEntry(0n, 'PML4', pt.getEntry(0n, 'PML4') | (1n << 63n)); // NX on the PML4 entry
        },
      },
      'E_UNMAPPED',
      'the main tables do not let the kernel use the entry page (the far jump after paging is on) at 0x100000 (exec): instruction fetch from a no-execute page (NX set in the PML4 entry; NX at any level forbids fetches)',
    );
  });

  it('refuses table frames over the kernel or above 16 MiB, and an unknown slot space', () => {
    const layout = 'E_LAYOUT';
    refuses({ tableFrames: { start: 0x103000, end: 0x200000 } }, layout, 'table frames [0x103000, 0x200000) must lie between 0x104000 and 16 MiB');
    refuses({ tableFrames: { start: 0x110000, end: 0x1100000 } }, layout, 'table frames [0x110000, 0x1100000) must lie between 0x104000 and 16 MiB');
    refuses({ slot: 'nope' }, layout, 'slot: there is no space named "nope"');
  });
});

/** Boots `kernel` in QEMU with its serial port in a file; returns once the marker is there. */
async function boot(qemu: string, kernel: TestKernel, extra: string[] = []): Promise<{ q: QemuProcess; serial: string }> {
  const q = await startQemu(
    qemu,
    ['-accel', 'tcg', '-cpu', 'max', '-m', '128', '-display', 'none', '-nodefaults', '-serial', 'file:{dir}/serial.txt', '-kernel', '{dir}/kernel.elf', ...extra],
    (dir) => writeFileSync(`${dir}/kernel.elf`, kernel.elf),
  );
  try {
    return { q, serial: await waitForFileText(q.file('serial.txt'), `${kernel.manifest.marker}\n`) };
  } catch (e) {
    await q.stop();
    throw e;
  }
}

/** The registers `info registers` shows, by name (CR3=..., EFER=..., RIP=...). */
function registers(text: string): Record<string, bigint> {
  return Object.fromEntries([...text.matchAll(/\b(RIP|RSP|RAX|CR0|CR2|CR3|CR4|EFER)=([0-9a-f]+)/g)].map((m) => [m[1]!, BigInt(`0x${m[2]}`)]));
}

async function readQword(q: QemuProcess, pa: number): Promise<bigint> {
  const out = await humanMonitor(q.qmp, `xp /1gx 0x${pa.toString(16)}`);
  return BigInt(out.trim().split(/\s+/).pop()!);
}

describeQemu('the test kernel in real QEMU', (qemu) => {
  // -cpu max: 1 GiB pages (pdpe1gb) and LA57, which the default qemu64 CPU lacks.
  describe('4-level tables with 4 KiB, 2 MiB and 1 GiB pages, NX, user pages and a hole', () => {
    const k = buildTestKernel({ tables: richTables });
    let q: QemuProcess | undefined;
    let serial = '';
    let regs: Record<string, bigint> = {};

    beforeAll(async () => {
      ({ q, serial } = await boot(qemu, k));
      await q.qmp.execute('stop');
      regs = registers(await humanMonitor(q.qmp, 'info registers'));
    });
    afterAll(async () => {
      await q?.stop();
    });

    it('writes the marker line to COM1 from 64-bit higher-half code', () => {
      expect(serial).toBe('pagewalk test kernel: long mode\n');
    });

    it('runs the loop in long mode on the main tables: CR0, CR3, CR4, EFER (LMA) and RIP as promised', () => {
      const m = k.manifest;
      expect(regs.CR3).toBe(m.cr3);
      expect([regs.CR0, regs.CR4, regs.EFER]).toEqual([0x80010011n, 0xa0n, 0xd00n]);
      expect(regs.EFER! & 0x400n).toBe(0x400n); // LMA
      expect(regs.RIP! >= m.loop && regs.RIP! < m.loopEnd, `RIP 0x${regs.RIP!.toString(16)}`).toBe(true);
      expect(regs.RSP).toBe(m.stackTop);
    });

    it('was entered by the multiboot loader (EAX = 0x2badb002, EBX = the information at 0x9500)', async () => {
      expect(await humanMonitor(q!.qmp, `xp /2wx 0x${k.manifest.bootInfo.pa.toString(16)}`)).toBe('0000000000102000: 0x2badb002 0x00009500\r\n');
    });

    it('keeps counting turns of the loop', async () => {
      const before = await readQword(q!, k.manifest.loopCount.pa);
      expect(before).toBeGreaterThan(0n);
      await q!.qmp.execute('cont');
      await new Promise((r) => setTimeout(r, 100));
      await q!.qmp.execute('stop');
      expect(await readQword(q!, k.manifest.loopCount.pa)).toBeGreaterThan(before);
    });

    it('info tlb shows exactly the mappings built, with the A/D bits the run set', async () => {
      const tlb = await humanMonitor(q!.qmp, 'info tlb');
      expect(tlb.split('\r\n').filter(Boolean)).toEqual([
        '0000000000100000: 0000000000100000 ----A---W', // the entry page: fetched, never written
        '0000000000200000: 0000000000200000 X-P-----W', // 2 MiB, NX
        '0000000000400000: 0000000000400000 X-P-----W',
        '0000000040000000: 0000000000800000 -------UW', // user; 0x40001000 is the hole
        '0000000040002000: 0000000000801000 X------U-',
        'ffff800000000000: 0000000000000000 XGP-----W', // 1 GiB
        'ffffffff80101000: 0000000000101000 -G--A----', // code: read-only, executed
        'ffffffff80102000: 0000000000102000 XG-DA---W', // data: the loop counter is written
        'ffffffff80103000: 0000000000103000 XG------W', // stack: never touched
      ]);
    });

    it("pagewalk's walk of each page agrees with QEMU's on the address, size and rights", async () => {
      const tlb = await humanMonitor(q!.qmp, 'info tlb');
      const ctx = contextOf(k);
      const lines = tlb.split('\r\n').filter(Boolean);
      for (const line of lines) {
        const [, va, pa, flags] = /^([0-9a-f]{16}): ([0-9a-f]{16}) ([-XGPDACTUW]{9})$/.exec(line)!;
        const t = walk(k.mem, ctx, BigInt(`0x${va}`)).translation;
        expect(t, line).not.toBeNull();
        const f = (c: string) => flags!.includes(c);
        expect([t!.pa, t!.pageSize > 4096, !t!.rights.execute, t!.global, t!.rights.user, t!.rights.write], line).toEqual([
          BigInt(`0x${pa}`),
          f('P'),
          f('X'),
          f('G'),
          f('U'),
          f('W'),
        ]);
      }
      expect(lines).toHaveLength(9);
    });
  });

  describe('5-level paging, the loop started on another address space', () => {
    const k = buildTestKernel({
      mode: '5-level',
      spaces: { alt: (pt) => mapTestKernel(pt, { identity: 0x200000, higherHalf: 0x200000 }) },
      slot: 'alt',
    });
    let q: QemuProcess | undefined;

    beforeAll(async () => {
      ({ q } = await boot(qemu, k));
      await q.qmp.execute('stop');
    });
    afterAll(async () => {
      await q?.stop();
    });

    it('runs with CR4.LA57 on the alternative tables, which info tlb shows', async () => {
      const regs = registers(await humanMonitor(q!.qmp, 'info registers'));
      expect([regs.CR3, regs.CR4, regs.EFER]).toEqual([k.manifest.spaces.alt, 0x10a0n, 0xd00n]);
      expect(regs.RIP! >= k.manifest.loop && regs.RIP! < k.manifest.loopEnd).toBe(true);
      expect((await humanMonitor(q!.qmp, 'info tlb')).split('\r\n').filter(Boolean)).toEqual([
        '0000000000000000: 0000000000000000 --P-----W', // the identity 2 MiB page: not used after the switch
        'ffffffff80000000: 0000000000000000 -GPDA---W', // the kernel's 2 MiB page: executed and written
      ]);
    });
  });

  describe('the loop switched to tables that forget the kernel', () => {
    const k = buildTestKernel({ spaces: { broken: (pt) => mapTestKernel(pt, { higherHalf: 'none' }) }, slot: 'broken' });
    let q: QemuProcess | undefined;

    beforeAll(async () => {
      ({ q } = await boot(qemu, k, ['-action', 'reboot=shutdown,shutdown=pause']));
      await untilShutdown(q);
    });
    afterAll(async () => {
      await q?.stop();
    });

    it('triple-faults on the fetch after mov cr3, and QEMU keeps the state of the fault', async () => {
      expect(await q!.qmp.execute('query-status')).toMatchObject({ status: 'shutdown' });
      const regs = registers(await humanMonitor(q!.qmp, 'info registers'));
      const m = k.manifest;
      expect([regs.RIP, regs.CR2, regs.CR3, regs.RAX]).toEqual([m.afterCr3Write, m.afterCr3Write, m.spaces.broken, m.spaces.broken]);
      expect(await readQword(q!, m.loopCount.pa)).toBe(0n);
      expect(q!.qmp.events.find((e) => e.event === 'SHUTDOWN')?.data).toEqual({ guest: true, reason: 'guest-reset' });
    });
  });
});
