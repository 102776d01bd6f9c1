/**
 * End-to-end tests of the CLI commands on the built-in example machine and on dumps of it, in
 * process (exact stdout, stderr and exit status).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildExample, EXAMPLE } from '../../src/image/example.js';
import { buildLegacyKernel } from '../../src/image/legacyKernel.js';
import { writeRawImage } from '../../src/image/rawImage.js';
import { cli } from '../helpers/cli.js';

const m = buildExample();
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const dir = mkdtempSync(join(tmpdir(), 'pagewalk-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('regs', () => {
  it('decodes the paging registers as text', async () => {
    const r = await cli(['regs', '--example']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^mode\s+4-level paging\s+48-bit linear addresses, MAXPHYADDR 40$/m);
    expect(r.stdout).toMatch(/^CR0\s+0x80010033\s+PE WP PG$/m);
    expect(r.stdout).toMatch(/^EFER\s+0xd01\s+SCE LME LMA NXE$/m);
    expect(r.stdout).toMatch(/^IDTR\s+0xffffffff80007000\s+limit 0xfff$/m);
    expect(r.stderr).toBe('');
  });

  it('prints the documented JSON', async () => {
    const r = await cli(['regs', '--example', '--json']);
    const j = JSON.parse(r.stdout);
    expect(j.mode).toBe('4-level');
    expect(j.cr3).toEqual({ value: hex(m.loaderCr3), base: hex(m.loaderCr3), pcid: null, pwt: false, pcd: false });
    expect(j.efer).toMatchObject({ lme: true, lma: true, nxe: true });
    expect(j.rip).toBe(hex(EXAMPLE.rip));
    expect(j.tr).toEqual({ selector: '0x28', base: hex(EXAMPLE.tss), limit: '0x67' });
  });
});

describe('walk', () => {
  it('walks the next instruction: 4 levels, r-x supervisor, exit 0', async () => {
    const r = await cli(['walk', '--example', '--access', 'exec', '--json', hex(EXAMPLE.rip)]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.steps.map((s: { level: string }) => s.level)).toEqual(['PML4', 'PDPT', 'PD', 'PT']);
    expect(j.steps[0]).toMatchObject({ index: 511, entryAddress: '0x100ff8', present: true, flags: ['P', 'RW', 'US'] });
    expect(j.steps[3]).toMatchObject({ index: 1, raw: '0x201101', flags: ['P', 'G'], next: '0x201000', leaf: true, pageSize: 4096 });
    expect(j).toMatchObject({ mapped: true, pa: '0x201234', pageSize: 4096, effective: { write: false, user: false, execute: true }, fault: null });
    expect(j.access).toEqual({ kind: 'exec', user: false, faults: false, errorCode: null, reason: null });
  });

  it('reports a write to the read-only text as a protection fault with exit 1', async () => {
    const r = await cli(['walk', '--example', '--access', 'write', hex(EXAMPLE.rip)]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('PT[1] ✗');
    expect(r.stdout).toContain('✗ #PF, error code 0x3: supervisor write to a read-only page (R/W=0 in the PT entry) with CR0.WP=1');
  });

  it('prints an array for several addresses, faults included', async () => {
    const r = await cli(['walk', '--example', '--json', hex(EXAMPLE.rip), '0x800000000000', '0xffff900000000000']);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j).toHaveLength(3);
    expect(j[1].fault).toMatchObject({ level: null, reason: 'non-canonical', vector: 13, errorCode: '0x0' });
    expect(j[2].fault).toMatchObject({ level: 'PML4', reason: 'not-present', vector: 14, errorCode: '0x0' });
    expect(j[2].mapped).toBe(false);
  });

  it('checks user accesses with --user', async () => {
    const r = await cli(['walk', '--example', '--user', '--json', hex(EXAMPLE.data.va)]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).fault).toMatchObject({ reason: 'protection', errorCode: '0x5', denials: ['user-to-supervisor'], level: 'PT' });
  });
});

describe('map', () => {
  it('lists the loader tables as coalesced ranges in JSON', async () => {
    const r = await cli(['map', '--example', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.cr3).toBe(hex(m.loaderCr3));
    expect(j.ranges.map((x: { va: string; size: string; pageSize: number }) => [x.va, x.size, x.pageSize])).toEqual([
      ['0x0', '0x100000000', 1 << 30],
      ['0xffff800000000000', '0x100000000', 1 << 30],
      ['0xffffffff80000000', '0x4000', 4096],
      ['0xffffffff80004000', '0x2000', 4096],
      ['0xffffffff80006000', '0xa000', 4096],
    ]);
    expect(j.ranges[2]).toMatchObject({ pa: '0x200000', write: false, user: false, execute: true, global: true });
    expect(j.summary).toMatchObject({ leaves: 24, ranges: 5, truncated: [], unreadable: [] });
  });

  it('restricts to a window with --from/--to', async () => {
    const r = await cli(['map', '--example', '--json', '--from', '0xffffffff80004000', '--to', '0xffffffff80006fff']);
    const j = JSON.parse(r.stdout);
    expect(j.ranges.map((x: { va: string; size: string }) => [x.va, x.size])).toEqual([
      ['0xffffffff80004000', '0x2000'],
      ['0xffffffff80006000', '0x1000'],
    ]);
  });

  it('prints aligned columns with sizes as 4K/2M/1G', async () => {
    const r = await cli(['map', '--example']);
    expect(r.stdout).toContain('0xffffffff80000000  0xffffffff80003fff     16K    4K  r-x kern G   0x000000200000');
    expect(r.stdout).toContain('5 ranges, 24 pages, 8.0G mapped');
  });

  it('refuses a window upside down', async () => {
    const r = await cli(['map', '--example', '--from', '0x2000', '--to', '0x1000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('pagewalk: --from 0x2000 is above --to 0x1000\n');
  });
});

describe('diff and phys2virt', () => {
  it('diffs the kernel tables against the loader tables', async () => {
    const r = await cli(['diff', '--example', '--cr3', hex(m.kernelCr3), '--against', hex(m.loaderCr3), '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const removed = j.entries.filter((e: { kind: string }) => e.kind === 'removed').map((e: { va: string }) => e.va);
    expect(removed).toContain('0x0');
    expect(removed).toContain('0xffff800004000000');
    expect(j.counts.removed).toBeGreaterThanOrEqual(3);
  });

  it('finds every alias of a physical address', async () => {
    const r = await cli(['phys2virt', '--example', '--json', '0x201234']);
    expect(r.status).toBe(0);
    const vas = JSON.parse(r.stdout).aliases.map((a: { va: string }) => a.va);
    expect(vas).toEqual(['0x201234', '0xffff800000201234', '0xffffffff80001234']);
  });
});

describe('check', () => {
  it('predicts the triple fault of the kernel tables (exit 1)', async () => {
    const r = await cli(['check', '--example', '--cr3', hex(m.kernelCr3), '--json']);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.preflight.verdict).toBe('triple-fault');
    expect(j.preflight.chain.map((l: { name: string }) => l.name)).toEqual(['#PF', '#DF', 'triple fault']);
    expect(j.preflight.problems[0]).toMatchObject({ what: 'stack', va: '0xffff800007ffff78', access: 'write' });
    expect(j.preflight.problems[0].fault).toMatchObject({ level: 'PD', reason: 'not-present', errorCode: '0x2' });
    expect(j.lost.map((x: { va: string }) => x.va)).toContain('0x0');
  });

  it('passes the fixed tables (exit 0)', async () => {
    const r = await cli(['check', '--example', '--cr3', hex(m.fixedCr3), '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).preflight.verdict).toBe('safe');
  });
});

describe('fault', () => {
  it('decodes the error code and agrees with the tables', async () => {
    const r = await cli(['fault', '--example', '--cr3', hex(m.kernelCr3), '--cr2', hex(EXAMPLE.rsp - 8n), '--error-code', '0x2', '--json']);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.decoded).toMatchObject({ present: false, write: true, user: false, access: 'write' });
    expect(j.agrees).toBe(true);
    expect(j.explanation).toContain('The tables agree: PD[63]');
  });

  it('says when the tables now allow the access', async () => {
    const r = await cli(['fault', '--example', '--cr2', hex(EXAMPLE.rsp - 8n), '--error-code', '0x2']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('The tables now allow this supervisor write');
  });

  it('warns that 0x10 is not an NX fault', async () => {
    const r = await cli(['fault', '--example', '--cr2', '0x400000000', '--error-code', '0x10']);
    expect(r.stdout).toContain('not an NX fault');
  });

  it('refuses error codes with undefined bits', async () => {
    const r = await cli(['fault', '--example', '--cr2', '0x1000', '--error-code', '0x10000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^pagewalk: --error-code: 0x10000 sets bits no CPU defines/);
  });
});

describe('dumps', () => {
  it('walks an ELF core of the example exactly like the example itself', async () => {
    const core = join(dir, 'example.core');
    expect((await cli(['demo', '--save', core])).status).toBe(0);
    const fromCore = await cli(['walk', '--dump', core, '--json', hex(EXAMPLE.rip), hex(EXAMPLE.rsp)]);
    const fromExample = await cli(['walk', '--example', '--json', hex(EXAMPLE.rip), hex(EXAMPLE.rsp)]);
    expect(fromCore.stdout).toBe(fromExample.stdout);
    // QEMU's ELF core has no EFER: pagewalk infers it and says so.
    expect(fromCore.stderr).toContain('EFER is not in QEMU');
    expect((await cli(['walk', '--dump', core, '--efer', '0xd01', hex(EXAMPLE.rip)])).stderr).not.toContain('EFER');
  });

  it('walks a raw image with --cr3, assuming 4-level paging and saying so', async () => {
    const raw = join(dir, 'example.raw');
    await writeRawImage(m.mem, raw);
    const r = await cli(['walk', '--dump', raw, '--cr3', hex(m.kernelCr3), '--json', hex(EXAMPLE.rip)]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).pa).toBe('0x201234');
    expect(r.stderr).toContain('assuming 4-level long mode');
    expect(r.stderr).toContain('MAXPHYADDR is unknown: assuming 52');
  });
});

describe('real mode', () => {
  it('regs names it and gives CS:IP with the linear address code is read at', async () => {
    const r = await cli(['regs', '--example', '--cr0', '0x60000010']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^mode +real mode, no paging /m);
    expect(r.stdout).toMatch(/^RIP +0xffffffff80001234 +CS:IP 0008:1234, linear 0x1234$/m);
  });
});

describe('32-bit kernels', () => {
  it('map prints 8-digit linear addresses in 32-bit and PAE paging', async () => {
    for (const mode of ['32-bit', 'PAE'] as const) {
      const k = buildLegacyKernel({ mode });
      const raw = join(dir, `legacy-${mode}.raw`);
      await writeRawImage(k.mem, raw);
      const r = await cli(['map', '--dump', raw, '--mode', mode, '--cr3', hex(k.manifest.cr3), '--maxphyaddr', '36']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split('\n').slice(1, 4)).toEqual([
        'VA start    VA end        size  page  rights       PA',
        '0x00100000  0x00100fff      4K    4K  rwx kern     0x000000100000',
        '0xc0101000  0xc0101fff      4K    4K  r-x kern G   0x000000101000',
      ]);
    }
  });
});

describe('bad input', () => {
  it('names a typo and suggests the right option, exit 2', async () => {
    const r = await cli(['walk', '--exampel', '0x1000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("error: unknown option '--exampel'");
    expect(r.stderr).toContain('--example');
  });

  it('rejects an unknown command with a suggestion', async () => {
    const r = await cli(['wlak']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'wlak'");
    expect(r.stderr).toContain('walk');
  });

  it('explains bad numbers, missing targets and missing files in one line', async () => {
    const bad = await cli(['walk', '--example', '0xzz']);
    expect(bad).toMatchObject({ status: 2, stdout: '' });
    expect(bad.stderr).toBe("pagewalk: VA: expected an address such as 0xffffffff80000000, got '0xzz'\n");
    const none = await cli(['walk', '0x1000']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^pagewalk: no target: pass --dump FILE/);
    const missing = await cli(['walk', '--dump', join(dir, 'nope.core'), '0x1000']);
    expect(missing.status).toBe(3);
    expect(missing.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    const mode = await cli(['walk', '--example', '--mode', '6-level', '0x1000']);
    expect(mode.status).toBe(2);
    const phys = await cli(['walk', '--example', '--maxphyaddr', '60', '0x1000']);
    expect(phys.stderr).toBe('pagewalk: --maxphyaddr: 60 is too large (at most 0x34)\n');
  });

  it('refuses a linear address above 4 GiB in a 32-bit mode', async () => {
    const r = await cli(['walk', '--example', '--mode', 'pae', '0x100000000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('pagewalk: 0x100000000 does not fit the 32-bit linear addresses of PAE mode\n');
  });
});

describe('colour', () => {
  it('colours with FORCE_COLOR and never with NO_COLOR or in JSON', async () => {
    expect((await cli(['walk', '--example', hex(EXAMPLE.rip)], { FORCE_COLOR: '1' })).stdout).toContain('\x1b[');
    expect((await cli(['walk', '--example', hex(EXAMPLE.rip)], { FORCE_COLOR: '1', NO_COLOR: '1' })).stdout).not.toContain('\x1b[');
    expect((await cli(['walk', '--example', '--json', hex(EXAMPLE.rip)], { FORCE_COLOR: '1' })).stdout).not.toContain('\x1b[');
  });
});
