/**
 * `info mtree -f` as QEMU 7.2 prints it: the system view picked out of the others (SMM, I/O, bus
 * masters with no rendered view), ranges with their kind, region and offset, readable memory merged,
 * and every line it does not know refused with its number.
 */
import { describe, expect, it } from 'vitest';
import { HmpError } from '../../src/qmp/errors.js';
import { covers, parseMtreeFlat, readableRanges, systemMemory } from '../../src/target/mtree.js';
import { fileWindows } from '../../src/target/memPath.js';

/** QEMU 7.2, `-m 4G -object memory-backend-file,id=ram,... -machine memory-backend=ram`, I/O view shortened. */
const FOUR_GIB = [
  'FlatView #0',
  ' AS "cpu-smm-0", root: memory',
  ' Root memory region: memory',
  '  0000000000000000-00000000000c2fff (prio 0, ram): ram',
  '  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios',
  '',
  'FlatView #1',
  ' AS "i440FX", root: bus master container',
  ' AS "PIIX3", root: bus master container',
  ' Root memory region: (none)',
  '  No rendered FlatView',
  '',
  'FlatView #2',
  ' AS "I/O", root: io',
  ' Root memory region: io',
  '  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan',
  '  0000000000000cf9-0000000000000cf9 (prio 1, i/o): piix3-reset-control',
  '  0000000000000cfa-0000000000000cfb (prio 0, i/o): pci-conf-idx @0000000000000002',
  '',
  'FlatView #3',
  ' AS "memory", root: system',
  ' AS "cpu-memory-0", root: system',
  ' Root memory region: system',
  '  0000000000000000-00000000000c2fff (prio 0, ram): ram',
  '  00000000000c3000-00000000000e7fff (prio 0, rom): ram @00000000000c3000',
  '  00000000000e8000-00000000000effff (prio 0, ram): ram @00000000000e8000',
  '  00000000000f0000-00000000000fffff (prio 0, rom): ram @00000000000f0000',
  '  0000000000100000-00000000bfffffff (prio 0, ram): ram @0000000000100000',
  '  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic',
  '  00000000fed00000-00000000fed003ff (prio 0, i/o): hpet',
  '  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi',
  '  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios',
  '  0000000100000000-000000013fffffff (prio 0, ram): ram @00000000c0000000',
  '',
  '',
].join('\n');

const h = (v: bigint) => `0x${v.toString(16)}`;

describe('info mtree -f', () => {
  it('parses every view: address spaces, root, ranges (end exclusive), kinds, regions and offsets', () => {
    const views = parseMtreeFlat(FOUR_GIB);
    expect(views.map((v) => [v.addressSpaces, v.root, v.ranges.length])).toEqual([
      [['cpu-smm-0'], 'memory', 2],
      [['i440FX', 'PIIX3'], null, 0],
      [['I/O'], 'io', 3],
      [['memory', 'cpu-memory-0'], 'system', 10],
    ]);
    const io = views[2]!.ranges;
    expect(io[1]).toEqual({ start: 0xcf9n, end: 0xcfan, priority: 1, kind: 'i/o', nonVolatile: false, region: 'piix3-reset-control', offset: 0n });
    expect(io[2]).toMatchObject({ region: 'pci-conf-idx', offset: 2n });
  });

  it('picks the view the CPU sees, whatever its number, and lists its RAM and ROM merged', () => {
    const sys = systemMemory(parseMtreeFlat(FOUR_GIB));
    expect(sys.map((r) => `${h(r.start)}-${h(r.end)} ${r.kind} ${r.region}@${h(r.offset)} prio ${r.priority}`)).toEqual([
      '0x0-0xc3000 ram ram@0x0 prio 0',
      '0xc3000-0xe8000 rom ram@0xc3000 prio 0',
      '0xe8000-0xf0000 ram ram@0xe8000 prio 0',
      '0xf0000-0x100000 rom ram@0xf0000 prio 0',
      '0x100000-0xc0000000 ram ram@0x100000 prio 0',
      '0xfec00000-0xfec01000 i/o ioapic@0x0 prio 0',
      '0xfed00000-0xfed00400 i/o hpet@0x0 prio 0',
      '0xfee00000-0xfef00000 i/o apic-msi@0x0 prio 4096',
      '0xfffc0000-0x100000000 rom pc.bios@0x0 prio 0',
      '0x100000000-0x140000000 ram ram@0xc0000000 prio 0',
    ]);
    // pc.bios ends at 4 GiB and the high RAM starts there: one readable run.
    expect(readableRanges(sys).map((r) => `${h(r.start)}-${h(r.end)}`)).toEqual(['0x0-0xc0000000', '0xfffc0000-0x140000000']);
  });

  it('gives the backend file offsets of the below-4G and above-4G RAM (what --mem-path reads)', () => {
    const windows = fileWindows(systemMemory(parseMtreeFlat(FOUR_GIB)), 'ram');
    expect(windows.map((w) => `${h(w.start)}-${h(w.end)} @${h(w.offset)}`)).toEqual([
      '0x0-0xc3000 @0x0',
      '0xc3000-0xe8000 @0xc3000',
      '0xe8000-0xf0000 @0xe8000',
      '0xf0000-0x100000 @0xf0000',
      '0x100000-0xc0000000 @0x100000',
      '0x100000000-0x140000000 @0xc0000000',
    ]);
    expect(fileWindows(systemMemory(parseMtreeFlat(FOUR_GIB)), 'pc.ram')).toEqual([]);
  });

  it('reads names with spaces, non-volatile and device kinds, KVM and flag suffixes', () => {
    const text = [
      'FlatView #0',
      ' AS "memory", root: system',
      ' Root memory region: system',
      '  0000000000000000-0000000000000fff (prio 0, nv-ram): pmem @0000000000001000 KVM',
      '  00000000000a0000-00000000000bffff (prio 1, i/o): vga ioports remapped [disabled]',
      '  00000000fd000000-00000000fdffffff (prio 1, ramd): vfio bar 0 @0000000000000000',
      '  00000000ffe00000-00000000ffffffff (prio 0, romd): system.flash0',
      '',
    ].join('\n');
    expect(systemMemory(parseMtreeFlat(text)).map((r) => [r.kind, r.nonVolatile, r.region, h(r.offset)])).toEqual([
      ['ram', true, 'pmem', '0x1000'],
      ['i/o', false, 'vga ioports remapped', '0x0'],
      ['ramd', false, 'vfio bar 0', '0x0'],
      ['romd', false, 'system.flash0', '0x0'],
    ]);
  });

  it('refuses what it cannot read: a line out of place, a garbled range, no system view, a refused command', () => {
    const refused = (text: string) => {
      try {
        systemMemory(parseMtreeFlat(text));
      } catch (e) {
        expect(e).toBeInstanceOf(HmpError);
        return [(e as HmpError).code, (e as HmpError).message];
      }
      throw new Error('accepted');
    };
    expect(refused('  0000000000000000-0000000000000fff (prio 0, ram): pc.ram\n')).toEqual([
      'E_HMP_PARSE',
      'info mtree -f: expected "FlatView #N" first: line 1 is "  0000000000000000-0000000000000fff (prio 0, ram): pc.ram"',
    ]);
    expect(refused('FlatView #0\n Root memory region: system\n  00000000-zz (prio 0, ram): pc.ram\n')).toEqual([
      'E_HMP_PARSE',
      'info mtree -f: expected "START-END (prio N, KIND): REGION [@OFFSET]": line 3 is "  00000000-zz (prio 0, ram): pc.ram"',
    ]);
    expect(refused('FlatView #0\n AS "I/O", root: io\n Root memory region: io\n')).toEqual([
      'E_HMP_PARSE',
      'info mtree -f: no flat view of the "system" memory region (the address space the CPU sees)',
    ]);
    expect(refused("unknown command: 'info'\n")[0]).toBe('E_HMP_UNKNOWN_COMMAND');
  });

  it('covers(): a range lies in readable memory only when every byte does', () => {
    const ram = readableRanges(systemMemory(parseMtreeFlat(FOUR_GIB)));
    expect(covers(ram, 0x100000n, 0x1000n)).toBe(true);
    expect(covers(ram, 0xbffff000n, 0x1000n)).toBe(true);
    expect(covers(ram, 0xbffff000n, 0x1001n)).toBe(false);
    expect(covers(ram, 0xfffff000n, 0x2000n)).toBe(true); // BIOS into high RAM
    expect(covers(ram, 0xfec00000n, 1n)).toBe(false); // the IOAPIC
    expect(covers(ram, 0x140000000n, 1n)).toBe(false);
    expect(covers(ram, 0x140000000n, 0n)).toBe(true);
  });
});
