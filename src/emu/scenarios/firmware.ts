/**
 * A UEFI firmware's environment, as OVMF leaves it when it starts an application: long mode on
 * tables that map all RAM 1:1 (2 MiB pages, writable, executable), its GDT (data 0x30, 64-bit code
 * 0x38), its IDT with handlers that print OVMF's "!!!! X64 Exception Type" line on COM1 and halt,
 * and a stack. The application (a boot loader) is given as code assembled at its 1:1 address.
 */
import { Assembler, mem, type Assembly } from '../../asm/index.js';
import { rsi } from '../../asm/registers.js';
import { codeDescriptor64, dataDescriptor, gate64 } from '../../image/descriptors.js';
import { PageTables } from '../../image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../image/sparseMemory.js';
import { CR4, EFER } from '../../paging/registers.js';
import type { StartState } from '../startState.js';
import { emitSerial } from './kernel/serial.js';
import { LAYOUT } from './layout.js';
import { HANDOVER_CR0 } from './loader.js';

/** Where the firmware and its application live (physical = virtual). */
export const FIRMWARE = {
  gdtPhys: 0x301000,
  idtPhys: 0x302000,
  codePhys: 0x303000,
  tables: { start: 0x310000, end: 0x380000 },
  /** The application's image. */
  appPhys: 0x380000,
  /** The stack the application is started on: [base, top). */
  stack: LAYOUT.bootStack,
} as const;

/** The firmware's GDT selectors (OVMF's). */
export const FIRMWARE_SELECTORS = { data: 0x30, code64: 0x38 } as const;

/** The exceptions the firmware has handlers for, with OVMF's wording. */
const EXCEPTIONS: readonly (readonly [vector: number, name: string])[] = [
  [6, '06(#UD - Invalid Opcode)'],
  [8, '08(#DF - Double Fault)'],
  [13, '0D(#GP - General Protection)'],
  [14, '0E(#PF - Page-Fault)'],
];

/** The firmware's code: COM1 and one handler per exception. */
function assembleFirmware(): Assembly {
  const a = new Assembler(64);
  for (const [vector] of EXCEPTIONS) {
    a.label(`fw_exception_${vector}`).lea(rsi, mem(`fw_msg_${vector}`)).call('puts').jmp('fw_halt');
  }
  a.label('fw_halt').cli().hlt().jmp('fw_halt');
  emitSerial(a);
  for (const [vector, name] of EXCEPTIONS) a.label(`fw_msg_${vector}`).db(`!!!! X64 Exception Type - ${name}  CPU Apic ID - 00000000 !!!!\n`, 0);
  return a.assemble(FIRMWARE.codePhys);
}

/** The firmware's memory and CPU with `app` loaded and about to run; `memory` writes what else is in RAM. */
export function uefiStart(app: Assembly, entry: string, memory: (mem: SparseMemory) => void): { mem: SparseMemory; cpu: StartState; symbols: Record<string, bigint> } {
  const mem = new SparseMemory(LAYOUT.ramSize);
  memory(mem);
  const fw = assembleFirmware();
  mem.write(FIRMWARE.codePhys, fw.bytes);
  mem.write(FIRMWARE.appPhys, app.bytes);
  const gdt = [0n, 0n, 0n, 0n, 0n, 0n, dataDescriptor(), codeDescriptor64()];
  gdt.forEach((d, i) => mem.write64(FIRMWARE.gdtPhys + i * 8, d));
  mem.write(FIRMWARE.idtPhys, new Uint8Array(0x1000));
  for (const [vector] of EXCEPTIONS) mem.write(FIRMWARE.idtPhys + vector * 16, gate64(fw.address(`fw_exception_${vector}`), { selector: FIRMWARE_SELECTORS.code64 }));
  mem.write(FIRMWARE.stack.base, new Uint8Array(FIRMWARE.stack.top - FIRMWARE.stack.base));

  const pt = new PageTables(mem, '4-level', new FrameAllocator(FIRMWARE.tables.start, FIRMWARE.tables.end));
  pt.mapRange(0n, 0, LAYOUT.ramSize, 0x200000);
  const cpu: StartState = {
    rip: app.address(entry),
    // The firmware calls the entry point: RSP holds the return address (0 here, as nothing returns).
    regs: { rsp: BigInt(FIRMWARE.stack.top - 8) },
    rflags: 0x2,
    cr0: HANDOVER_CR0,
    cr3: pt.cr3,
    cr4: CR4.PAE,
    efer: EFER.LME | EFER.LMA | EFER.NXE,
    gdtr: { base: BigInt(FIRMWARE.gdtPhys), limit: gdt.length * 8 - 1 },
    idtr: { base: BigInt(FIRMWARE.idtPhys), limit: 0xfff },
    cs: FIRMWARE_SELECTORS.code64,
    ss: FIRMWARE_SELECTORS.data,
    ds: FIRMWARE_SELECTORS.data,
    es: FIRMWARE_SELECTORS.data,
    fs: FIRMWARE_SELECTORS.data,
    gs: FIRMWARE_SELECTORS.data,
  };
  const symbols: Record<string, bigint> = { ...Object.fromEntries(fw.labels), firmware_idt: BigInt(FIRMWARE.idtPhys), firmware_gdt: BigInt(FIRMWARE.gdtPhys) };
  return { mem, cpu, symbols };
}
