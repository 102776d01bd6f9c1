/**
 * pagewalk's CR3 pre-flight (src/paging) against the emulator's own MMU and exception delivery:
 * each scenario is stopped on the emulator just before its `mov cr3`, the pre-flight judges the new
 * CR3 from the CPU state and memory at that point, and its verdict and exception chain must be
 * what the emulator then does. Two independent implementations, one answer.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/emu/index.js';
import { SCENARIOS, type Scenario } from '../../src/emu/scenarios/index.js';
import type { CpuState } from '../../src/paging/cpu.js';
import { FRAME_SIZE, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext, withCr3 } from '../../src/paging/mode.js';
import { TRIPLE_FAULT, preflight } from '../../src/paging/preflight.js';
import { machineCpuState } from '../../src/target/emuTarget.js';
import { VERDICT } from '../watch/expectations.js';

/** The machine's CPU as pagewalk reads the emulator as a target, with RIP at `next` (the instruction after the `mov cr3`). */
function cpuAt(m: Machine, next: bigint): CpuState {
  return { ...machineCpuState(m), rip: next };
}

/** The machine's RAM as pagewalk reads physical memory (debugger reads: no side effects). */
function ramOf(m: Machine, ramSize: number): PhysMemory {
  return { frame: (pa) => (pa >= 0 && pa + FRAME_SIZE <= ramSize ? new DataView(m.readPhysical(pa, FRAME_SIZE).buffer) : null) };
}

describe("the pre-flight at each scenario's mov cr3", () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))('%s: predicts what the emulator does next', (name, s) => {
    const build = s.build();
    const m = new Machine(build.config);
    const at = build.symbols.cr3_write!;
    expect(m.run({ until: (x) => x.cpu.rip === at, maxInstructions: 1_000_000 }).reason).toBe('until');
    const newCr3 = m.getRegister('rax');
    expect(newCr3).toBe(build.cr3.kernel);

    const cpu = cpuAt(m, build.symbols.after_cr3_write!);
    const ctx = withCr3(pagingContext(cpu, { maxPhyAddr: m.features.maxPhyAddr, gbPages: m.features.pdpe1gb }), newCr3);
    const result = preflight(ramOf(m, build.config.ramSize), { ctx, cpu });

    expect(result.verdict).toBe(VERDICT[name]);
    if (result.verdict === 'triple-fault') {
      const first = s.outcome.first!;
      expect(result.chain[0]).toMatchObject({ vector: first.vector, errorCode: first.errorCode, cr2: first.cr2 });
      expect(result.chain.at(-1)!.vector).toBe(TRIPLE_FAULT);
      expect(s.outcome.kind).toBe('triple-fault');
    } else if (result.verdict === 'at-risk') {
      expect(result.problems.length).toBeGreaterThan(0);
      // Nothing fails now; exception delivery (and NMI/#MC delivery) would.
      expect(result.problems.some((p) => p.when === 'on-exception')).toBe(true);
      expect(result.problems.filter((p) => p.when === 'now')).toEqual([]);
      expect(s.outcome.kind).toBe('triple-fault');
    } else {
      expect(result.problems).toEqual([]);
    }
  });
});
