/**
 * The scenarios on the emulator: the list and its lookup, deterministic builds, and one test per
 * scenario that runs it and checks how it ends (stop, the exception chain of the `-d int` log,
 * the first exception against the scenario's own outcome and against the symbols it names, CR3
 * after the switch, the COM1 text), with both TLB models.
 */
import { describe, expect, it } from 'vitest';
import { SCENARIOS, ScenarioError, findScenario, runScenario, type Scenario, type ScenarioBuild } from '../../src/emu/scenarios/index.js';

/** A log's exception lines, short: `old>new` for check_exception, `v=0e e=0010` for a delivery, `Triple fault`. */
function chain(lines: readonly string[]): string[] {
  return lines.map((l) => {
    const check = /^check_exception old: (\S+) new (\S+)$/.exec(l);
    if (check) return `${check[1]}>${check[2]}`;
    const v = /v=(\S+) e=(\S+)/.exec(l);
    return v ? `v=${v[1]} e=${v[2]}` : l;
  });
}

const PF_TRIPLE = (e: string) => ['0xffffffff>0xe', `v=0e e=${e}`, '0xe>0xe', 'v=08 e=0000', '0x8>0xe', 'Triple fault'];
const BOOT = (name: string) => [`pagewalk scenario ${name}: kernel started`, 'kernel: gdt and idt loaded', 'kernel: 4-level page tables built, cr3=0x400000'];

/** How each scenario must end on the emulator; `at` gives the first exception's RIP and CR2 from the build's symbols. */
const EXPECTED: Record<string, { chain: string[]; serial: string[]; at?: (b: ScenarioBuild) => { rip: bigint; cr2: bigint | null } }> = {
  good: { chain: [], serial: [...BOOT('good'), 'kernel: running on its own page tables', 'ok'] },
  'pd-index-typo': {
    chain: PF_TRIPLE('0010'),
    serial: BOOT('pd-index-typo'),
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.symbols.after_cr3_write! }),
  },
  'unshifted-bitfield': {
    chain: PF_TRIPLE('0010'),
    serial: BOOT('unshifted-bitfield'),
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.symbols.after_cr3_write! }),
  },
  'stack-unmapped': {
    chain: PF_TRIPLE('0002'),
    serial: BOOT('stack-unmapped'),
    // The first push on the new tables: the call that prints, below `call kmain`'s return address at the boot stack's top.
    at: (b) => ({ rip: b.symbols.announce_switch!, cr2: b.symbols.boot_stack_top! - 16n }),
  },
  'nx-everywhere': {
    // 86 #PF frames of 48 bytes fit the stack page (RSP 0x5ff8, then 0x5fc0 down to 0x5000) before a push reaches the guard page.
    chain: [...Array.from({ length: 86 }, () => ['0xffffffff>0xe', 'v=0e e=0011']).flat(), '0xe>0xe', 'v=08 e=0000', '0x8>0xe', 'Triple fault'],
    serial: BOOT('nx-everywhere'),
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.symbols.after_cr3_write! }),
  },
  'uefi-trampoline-unmapped': {
    chain: PF_TRIPLE('0010'),
    serial: ['uefi loader: kernel loaded at 0x200000, building its page tables', 'uefi loader: boot services exited, loading the kernel page tables, cr3=0x400000'],
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.symbols.after_cr3_write! }),
  },
  'idt-unmapped': {
    chain: ['v=03 e=0000', '0xffffffff>0xe', 'v=0e e=0000', '0xe>0xe', 'v=08 e=0000', '0x8>0xe', 'Triple fault'],
    serial: [...BOOT('idt-unmapped'), 'kernel: running on its own page tables', 'kernel: testing the IDT with int3'],
    at: (b) => ({ rip: b.symbols.int3_test!, cr2: null }),
  },
  'kernel-wrong-physical-base': {
    // The #GP of a zeroed gate, during #PF and then #DF delivery.
    chain: ['0xffffffff>0xe', 'v=0e e=0002', '0xe>0xd', 'v=08 e=0000', '0x8>0xd', 'Triple fault'],
    serial: BOOT('kernel-wrong-physical-base'),
    // `add [rax], al` one byte on from the `mov cr3`'s end (00 00 decodes from the first zero), RAX = the new CR3.
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.cr3.kernel! }),
  },
  'five-level': {
    chain: PF_TRIPLE('0010'),
    serial: BOOT('five-level'),
    at: (b) => ({ rip: b.symbols.after_cr3_write!, cr2: b.symbols.after_cr3_write! }),
  },
  'huge-page-misaligned': {
    chain: ['0xffffffff>0xe', 'v=0e e=000b'],
    serial: [
      ...BOOT('huge-page-misaligned'),
      'kernel: running on its own page tables',
      'kernel: clearing the framebuffer',
      'PANIC: #PF error=0xb cr2=0xffffc00000000000 rip=0xffffffff80000104',
    ],
    at: (b) => ({ rip: b.symbols.framebuffer_write!, cr2: 0xffffc00000000000n }),
  },
  'user-touches-supervisor': {
    chain: ['0xffffffff>0xe', 'v=0e e=0005'],
    serial: [
      ...BOOT('user-touches-supervisor'),
      'kernel: running on its own page tables',
      'kernel: entering user mode',
      'PANIC: #PF error=0x5 cr2=0xffffffff80002148 rip=0x400000',
    ],
    at: (b) => ({ rip: 0x400000n, cr2: b.symbols.kernel_secret! }),
  },
  'nx-without-nxe': {
    // The first push on the kernel stack, whose PT entry has bit 63 (NX) set with EFER.NXE=0.
    chain: PF_TRIPLE('000b'),
    serial: BOOT('nx-without-nxe'),
    at: (b) => ({ rip: b.symbols.announce_switch!, cr2: b.symbols.stack_top! - 16n }),
  },
  'write-to-readonly-wp': {
    chain: ['0xffffffff>0xe', 'v=0e e=0003'],
    serial: [
      ...BOOT('write-to-readonly-wp'),
      'kernel: running on its own page tables',
      'kernel: patching kernel_version',
      'PANIC: #PF error=0x3 cr2=0xffffffff80001110 rip=0xffffffff80000101',
    ],
    at: (b) => ({ rip: b.symbols.rodata_write!, cr2: b.symbols.kernel_version! }),
  },
};

/** JSON of a build with bigints and bytes, to compare two builds. */
function fingerprint(b: ScenarioBuild): string {
  const { memory, ...config } = b.config;
  const frames = memory && 'writtenFrames' in memory ? memory.writtenFrames().map(([pa, f]) => [pa, Buffer.from(f).toString('base64')]) : [];
  return JSON.stringify({ config, frames, symbols: b.symbols, cr3: b.cr3, free: b.freePhysical }, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

describe('the scenario list', () => {
  it('holds the twelve scenarios of issue 4, in its order, then the ones added since', () => {
    expect(SCENARIOS.map((s) => s.name)).toEqual([
      'good',
      'pd-index-typo',
      'unshifted-bitfield',
      'stack-unmapped',
      'nx-everywhere',
      'uefi-trampoline-unmapped',
      'idt-unmapped',
      'kernel-wrong-physical-base',
      'five-level',
      'huge-page-misaligned',
      'user-touches-supervisor',
      'write-to-readonly-wp',
      'nx-without-nxe',
    ]);
    expect(Object.keys(EXPECTED).sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
  });

  it('gives each a one-line title, a one-paragraph description and an outcome whose kind fits its first exception', () => {
    for (const s of SCENARIOS) {
      expect(s.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(s.title).not.toMatch(/\n/);
      expect(s.description).not.toMatch(/\n/);
      expect(s.description.length, s.name).toBeGreaterThan(300);
      expect(s.outcome.first === undefined, s.name).toBe(s.outcome.kind === 'runs');
    }
  });

  it('finds a scenario by its exact name', () => {
    expect(findScenario('five-level')).toBe(SCENARIOS[8]);
  });

  it('suggests the closest name for a typo, in one line with every valid name', () => {
    let error: unknown;
    try {
      findScenario('pd-index-typ');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as ScenarioError).code).toBe('E_SCENARIO');
    expect((error as ScenarioError).message).toBe(
      'unknown scenario "pd-index-typ": did you mean "pd-index-typo"? valid scenarios are good, pd-index-typo, unshifted-bitfield, ' +
        'stack-unmapped, nx-everywhere, uefi-trampoline-unmapped, idt-unmapped, kernel-wrong-physical-base, five-level, ' +
        'huge-page-misaligned, user-touches-supervisor, write-to-readonly-wp, nx-without-nxe',
    );
    expect(() => findScenario('fivelevel')).toThrow('did you mean "five-level"?');
    expect(() => findScenario('uefi')).toThrow('did you mean "uefi-trampoline-unmapped"?');
    expect(() => findScenario('NX-Everywhere')).toThrow('did you mean "nx-everywhere"?');
  });

  it('makes no suggestion when nothing is close', () => {
    expect(() => findScenario('bochs')).toThrow(/^unknown scenario "bochs": valid scenarios are good, /);
  });

  it('builds the same bytes every time', () => {
    for (const s of SCENARIOS) expect(fingerprint(s.build()), s.name).toBe(fingerprint(s.build()));
  });
});

describe('every scenario on the emulator', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as [string, Scenario]))('%s ends as its outcome says', (name, s) => {
    const expected = EXPECTED[name]!;
    const build = s.build();
    const run = runScenario(build);

    expect(run.outcome).toEqual(s.outcome);
    expect(run.stop.reason).toBe(s.outcome.kind === 'triple-fault' ? 'shutdown' : 'halted');
    expect(chain(run.exceptions)).toEqual(expected.chain);
    expect(run.serial).toBe(expected.serial.map((l) => `${l}\n`).join(''));
    if (expected.at) {
      const { rip, cr2 } = expected.at(build);
      expect(s.outcome.first?.rip).toBe(rip);
      expect(s.outcome.first?.cr2).toBe(cr2);
    }
    // Every scenario loads the kernel's tables before it ends.
    expect(run.machine.getRegister('cr3')).toBe(build.cr3.kernel);
    expect(build.cr3.kernel).toBe(0x400000n);

    // QEMU's TLB model drops every translation on a CR3 load; nothing here depends on the difference.
    const tcg = runScenario(s.build(), { tlbModel: 'qemu-tcg' });
    expect(tcg.exceptions).toEqual(run.exceptions);
    expect(tcg.serial).toBe(run.serial);
  });
});
