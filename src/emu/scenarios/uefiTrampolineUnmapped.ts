/**
 * `uefi-trampoline-unmapped`: a UEFI loader switches to the kernel's tables before jumping, and its
 * own 1:1-mapped code is not in them.
 */
import { Assembler, mem, qword, type Assembly } from '../../asm/index.js';
import { cr3, ecx, edi, esi, rax, rcx, rdi, rdx, rsi, rsp } from '../../asm/registers.js';
import { buildKernel, sectionFlags, type KernelImage } from './kernel/kernel.js';
import { emitPagingData, emitPagingText } from './kernel/paging.js';
import { emitSerial } from './kernel/serial.js';
import { FIRMWARE, uefiStart } from './firmware.js';
import { LAYOUT, PTE } from './layout.js';
import { bootInformation } from './loader.js';
import type { Scenario, ScenarioBuild } from './scenario.js';

/** The loader (a UEFI application at its 1:1 address): maps the kernel, loads CR3, would jump to it. */
function assembleLoader(kernel: KernelImage): Assembly {
  const a = new Assembler(64);
  a.label('efi_main')
    .call('serial_init')
    .lea(rsi, mem('msg_start'))
    .call('puts')
    .mov(qword('phys_offset'), 0) // UEFI: memory is mapped 1:1
    .mov(qword('next_frame'), LAYOUT.usable.start)
    .call('alloc_table')
    .mov(qword('pml_root'), rax);
  for (const s of kernel.sections) {
    if (s.label === 'sec_guard') continue;
    a.mov(rdi, s.va)
      .mov(rsi, LAYOUT.kernelPhys + s.offset)
      .mov(rdx, sectionFlags(s))
      .mov(ecx, s.size / 0x1000)
      .call('map_range');
  }
  a.mov(rdi, LAYOUT.hhdm)
    .mov(esi, 0)
    .mov(rdx, PTE.P | PTE.RW | PTE.PS | PTE.NX)
    .mov(ecx, LAYOUT.ramSize / 0x200000)
    .call('map_range')
    .lea(rsi, mem('msg_switch'))
    .call('puts')
    .mov(rax, qword('pml_root'))
    .call('put_hex')
    .mov(edi, 0x0a)
    .call('putc')
    .mov(rax, qword('pml_root'))
    .label('cr3_write')
    .mov(cr3, rax)
    .label('after_cr3_write')
    .mov(rdi, LAYOUT.hhdm + BigInt(LAYOUT.bootInfoPhys))
    .mov(rsp, LAYOUT.hhdm + BigInt(LAYOUT.bootStack.top))
    .mov(rcx, kernel.entry)
    .jmp(rcx);
  emitSerial(a);
  emitPagingText(a);
  a.label('msg_start')
    .db('uefi loader: kernel loaded at 0x200000, building its page tables\n', 0)
    .label('msg_switch')
    .db('uefi loader: boot services exited, loading the kernel page tables, cr3=', 0);
  emitPagingData(a);
  return a.assemble(FIRMWARE.appPhys);
}

function build(): ScenarioBuild {
  const kernel = buildKernel({ name: 'uefi-trampoline-unmapped' });
  const loader = assembleLoader(kernel);
  const { mem: image, cpu, symbols } = uefiStart(loader, 'efi_main', (m) => {
    m.write(LAYOUT.kernelPhys, kernel.assembly.bytes);
    m.write(LAYOUT.bootInfoPhys, bootInformation());
  });
  return {
    config: { ramSize: LAYOUT.ramSize, memory: image, cpu, tripleFault: 'shutdown' },
    symbols: { ...symbols, ...Object.fromEntries(loader.labels), kernel_entry: kernel.entry },
    cr3: { firmware: cpu.cr3, kernel: kernel.cr3 },
    freePhysical: { ...LAYOUT.free },
  };
}

/** The loader's own code, mapped 1:1 by the firmware, left out of the tables it switches to. */
export const uefiTrampolineUnmapped: Scenario = {
  name: 'uefi-trampoline-unmapped',
  title: "a UEFI loader loads the kernel's CR3 before jumping: its own 1:1-mapped code is gone",
  description:
    "A UEFI boot loader runs on the firmware's tables, which map all memory 1:1; its code is at " +
    "0x380000. It builds the kernel's tables (the kernel at 0xffffffff80000000, the direct map), " +
    'exits boot services and loads the new CR3 from its own code, meaning to jump to the kernel ' +
    'right after. The new tables do not map 0x380000, so the next fetch faults: #PF error code 0x10 ' +
    '(not present, fetch), CR2 = RIP = the instruction after `mov cr3`, a low 1:1 address. The ' +
    "firmware's IDT (also 1:1, at 0x302000) is gone too: #DF, then a triple fault, and the firmware's " +
    'exception handler never prints. The fix is a trampoline page mapped 1:1 in the new tables (or ' +
    'jumping to the kernel first). `pagewalk check` before the `mov cr3` reports the next ' +
    'instruction and every handler unreachable.',
  outcome: {
    kind: 'triple-fault',
    first: { vector: 14, errorCode: 0x10, cr2: 0x380129n, rip: 0x380129n },
  },
  build,
};
