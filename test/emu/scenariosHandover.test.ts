/**
 * The QEMU hand-over image of every scenario, checked without QEMU: the ELF loads the scenario's
 * memory unchanged plus the entry's pages, and the entry's 64-bit half, run on the emulator from
 * where the 32-bit half leaves the CPU, arrives at the scenario's RIP with exactly the state the
 * emulator starts the scenario in. Also the errors: no room, a state it cannot recreate, tables
 * that do not map the trampoline.
 */
import { describe, expect, it } from 'vitest';
import { Machine, type MachineState } from '../../src/emu/index.js';
import { SCENARIOS, findScenario, type Scenario, type ScenarioBuild } from '../../src/emu/scenarios/index.js';
import { HandoverError, buildHandoverElf } from '../../src/image/handover.js';
import { findMultibootHeader } from '../../src/image/multiboot.js';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { CR0, CR4, EFER } from '../../src/paging/registers.js';

/** The PT_LOAD segments of an ELF32 file: physical address and bytes. */
function loadSegments(elf: Uint8Array): { pa: number; bytes: Uint8Array }[] {
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const out: { pa: number; bytes: Uint8Array }[] = [];
  for (let i = 0; i < dv.getUint16(44, true); i++) {
    const p = dv.getUint32(28, true) + i * 32;
    if (dv.getUint32(p, true) !== 1) continue;
    const offset = dv.getUint32(p + 4, true);
    out.push({ pa: dv.getUint32(p + 12, true), bytes: elf.subarray(offset, offset + dv.getUint32(p + 16, true)) });
  }
  return out;
}

/** The bytes the ELF loads at `pa` (zeros where no segment covers it). */
function loaded(segments: { pa: number; bytes: Uint8Array }[], pa: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (const s of segments) {
    for (let i = 0; i < length; i++) {
      const k = pa + i - s.pa;
      if (k >= 0 && k < s.bytes.length) out[i] = s.bytes[k]!;
    }
  }
  return out;
}

/** Everything the CPU holds, without what the hand-over cannot and need not match (the instruction count). */
function cpuState(m: Machine): Omit<MachineState, 'halted' | 'inhibitIrq'> {
  const { halted: _h, inhibitIrq: _i, ...rest } = m.state();
  return rest;
}

describe('the hand-over image', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))('%s: loads the scenario unchanged and enters it in its start state', (_, s) => {
    const build = s.build();
    const image = buildHandoverElf(build);
    const free = build.freePhysical!;

    expect(image.entry).toBe(free.start);
    expect(findMultibootHeader(image.elf)).not.toBeNull();
    expect(new DataView(image.elf.buffer).getUint32(24, true)).toBe(image.entry);
    const segments = loadSegments(image.elf);
    const frames = (build.config.memory as SparseMemory).writtenFrames();
    for (const [pa, bytes] of frames) expect(loaded(segments, pa, bytes.length), `frame 0x${pa.toString(16)}`).toEqual(bytes);
    for (const seg of segments) {
      const inside = (pa: number) => frames.some(([f]) => pa >= f && pa < f + 0x1000) || (pa >= free.start && pa < free.end);
      expect(inside(seg.pa) && inside(seg.pa + seg.bytes.length - 1), `segment 0x${seg.pa.toString(16)}`).toBe(true);
    }

    // The 64-bit half, from where the 32-bit half leaves the CPU: long mode on the entry's tables.
    const start = build.config.cpu;
    const la57 = start.cr4 & CR4.LA57;
    const m = new Machine({
      ramSize: build.config.ramSize,
      memory: image.memory,
      features: build.config.features,
      cpu: {
        rip: image.longModeEntry,
        cr0: CR0.PG | CR0.PE,
        cr3: image.entryCr3,
        cr4: CR4.PAE | la57,
        efer: (start.efer & ~EFER.LMA) | EFER.LME,
        gdtr: { base: BigInt(image.entryGdt.base), limit: image.entryGdt.limit },
        cs: image.entryCode64,
      },
    });
    const stop = m.run({ maxInstructions: 200, until: (x) => x.cpu.rip === start.rip });
    expect(stop.reason).toBe('until');
    expect(m.log.lines).toEqual([]);
    expect(cpuState(m)).toEqual(cpuState(new Machine(build.config)));
  });

  it('puts the trampoline where the start tables map it: the direct map, or 1:1 under UEFI', () => {
    expect(buildHandoverElf(findScenario('good').build()).trampolineVa).toBe(0xffff800000801000n);
    expect(buildHandoverElf(findScenario('five-level').build()).trampolineVa).toBe(0xffff800000801000n);
    expect(buildHandoverElf(findScenario('uefi-trampoline-unmapped').build()).trampolineVa).toBe(0x801000n);
  });
});

describe('hand-over errors', () => {
  const good = (): ScenarioBuild => findScenario('good').build();
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return e instanceof HandoverError ? `${e.code}: ${e.message}` : String(e);
    }
    return 'no error';
  };

  it('refuses a place that the scenario uses, below 1 MiB, past RAM or outside its free memory', () => {
    expect(code(() => buildHandoverElf(good(), 0x200000))).toBe(
      'E_HANDOVER_PLACE: the hand-over entry at 0x200000 (12 pages) is outside the free memory [0x800000, 0x900000)',
    );
    expect(code(() => buildHandoverElf({ ...good(), freePhysical: undefined }, 0x300000))).toBe(
      "E_HANDOVER_PLACE: the hand-over entry at 0x300000 (12 pages) overlaps the scenario's memory image",
    );
    expect(code(() => buildHandoverElf(good(), 0x9000))).toBe('E_HANDOVER_PLACE: the hand-over entry at 0x9000 (12 pages) is below 1 MiB');
    expect(code(() => buildHandoverElf(good(), 0x1ffc000))).toBe('E_HANDOVER_PLACE: the hand-over entry at 0x1ffc000 (12 pages) runs past RAM');
    expect(code(() => buildHandoverElf({ ...good(), freePhysical: undefined }))).toBe(
      'E_HANDOVER_PLACE: the scenario declares no free physical memory for the hand-over entry',
    );
  });

  it('refuses a start state it cannot recreate', () => {
    const b = good();
    const { gdtr: _, ...noGdt } = b.config.cpu;
    expect(code(() => buildHandoverElf({ ...b, config: { ...b.config, cpu: noGdt } }))).toMatch(/^E_HANDOVER_STATE: the start state has no GDTR/);
    const cache = { selector: 0x30, base: 0n, limit: 0xffffffff, flags: 0x00cf9300 };
    expect(code(() => buildHandoverElf({ ...b, config: { ...b.config, cpu: { ...b.config.cpu, ss: cache } } }))).toBe(
      'E_HANDOVER_STATE: SS is given as a segment cache; a hand-over can only load selectors from the GDT',
    );
  });

  it('refuses start tables that map the free memory nowhere', () => {
    const mem = new SparseMemory(32 << 20);
    const pt = new PageTables(mem, '4-level', new FrameAllocator(0x300000, 0x310000));
    pt.map(0xffffffff80000000n, 0x200000, 0x1000);
    mem.write(0x200000, new Uint8Array([0xf4]));
    mem.write64(0x301008, 0x00af9b000000ffffn);
    const build: ScenarioBuild = {
      config: {
        ramSize: 32 << 20,
        memory: mem,
        cpu: { rip: 0xffffffff80000000n, cr0: CR0.PG | CR0.PE, cr3: pt.cr3, cr4: CR4.PAE, efer: EFER.LME | EFER.LMA, gdtr: { base: 0x301000n, limit: 15 } },
      },
      symbols: {},
      cr3: { only: pt.cr3 },
      freePhysical: { start: 0x800000, end: 0x900000 },
    };
    expect(code(() => buildHandoverElf(build))).toBe(
      'E_HANDOVER_UNMAPPED: the start tables (CR3 0x300000) do not map physical 0x801000 writable and executable for the supervisor: ' +
        'the hand-over trampoline needs it (map the free memory in a direct map or 1:1)',
    );
  });
});
