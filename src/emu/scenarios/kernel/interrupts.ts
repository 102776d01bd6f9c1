/**
 * The kernel's descriptor tables and exception handlers: its own GDT (kernel and user segments,
 * a TSS slot), `gdt_init` (LGDT, CS reloaded with a far return, data segments), an IDT filled at
 * run time by `idt_set`, and handlers for #BP (prints and returns), #UD, #DF, #GP and #PF (print
 * one line on COM1 and halt). Every handler runs on the stack it is given (no IST).
 */
import { byte, dword, mem, qword, ref, word, type Assembler } from '../../../asm/index.js';
import { ah, al, ax, cr2, ds, eax, edi, es, fs, gs, r8, rax, rcx, rdi, rdx, rsi, rsp, ss } from '../../../asm/registers.js';
import { codeDescriptor64, dataDescriptor, tss64, tssDescriptor64 } from '../../../image/descriptors.js';

/** The kernel's GDT selectors (Linux's order: user data before user code). */
export const KERNEL_SELECTORS = { kernelCode: 0x08, kernelData: 0x10, userData: 0x1b, userCode: 0x23, tss: 0x28 } as const;

/** IDT gate attributes: present, DPL 0, 64-bit interrupt gate. */
const INTERRUPT_GATE = 0x8e00;

/** The IDT's limit: 256 gates of 16 bytes. */
const IDT_LIMIT = 0xfff;

/** The vectors the kernel installs handlers for, with their handler labels. */
const HANDLERS: readonly (readonly [vector: number, label: string])[] = [
  [3, 'bp_handler'],
  [6, 'ud_handler'],
  [8, 'df_handler'],
  [13, 'gp_handler'],
  [14, 'pf_handler'],
];

/** A handler that reports a fault and halts: its label, its text and the frame fields it prints. */
interface Panic {
  label: string;
  text: string;
  fields: readonly ('error' | 'cr2' | 'rip')[];
  /** The CPU pushes an error code for this vector (the saved RIP is then at [rsp+8]). */
  errorCode: boolean;
}

const PANICS: readonly Panic[] = [
  { label: 'pf_handler', text: 'PANIC: #PF', fields: ['error', 'cr2', 'rip'], errorCode: true },
  { label: 'gp_handler', text: 'PANIC: #GP', fields: ['error', 'rip'], errorCode: true },
  { label: 'df_handler', text: 'PANIC: #DF', fields: ['rip'], errorCode: true },
  { label: 'ud_handler', text: 'PANIC: #UD', fields: ['rip'], errorCode: false },
];

/** Emits `gdt_init`, `idt_set` (edi = vector, rsi = handler; clobbers rax, rdi), `idt_init`, the handlers and `halt`. */
export function emitInterruptText(a: Assembler): void {
  // The TSS descriptor's base, then LGDT and the segment registers.
  const tssBase = (offset: number) => ref('kernel_gdt', KERNEL_SELECTORS.tss + offset);
  a.label('gdt_init')
    .lea(rax, mem('tss'))
    .mov(word(tssBase(2)), ax)
    .shr(rax, 16)
    .mov(byte(tssBase(4)), al)
    .mov(byte(tssBase(7)), ah)
    .shr(rax, 16)
    .mov(dword(tssBase(8)), eax)
    .lgdt(mem('kernel_gdtr'))
    .pop(rax) // the return address: the far return below goes back there through the new CS
    .push(KERNEL_SELECTORS.kernelCode)
    .push(rax)
    .mov(eax, KERNEL_SELECTORS.kernelData)
    .mov(ds, eax)
    .mov(es, eax)
    .mov(ss, eax)
    .mov(eax, 0)
    .mov(fs, eax)
    .mov(gs, eax)
    .retf();

  a.label('idt_set')
    .shl(rdi, 4)
    .lea(rax, mem('idt'))
    .add(rdi, rax)
    .mov(rax, rsi)
    .mov(word(rdi), ax)
    .mov(word(rdi, 2), KERNEL_SELECTORS.kernelCode)
    .mov(word(rdi, 4), INTERRUPT_GATE)
    .shr(rax, 16)
    .mov(word(rdi, 6), ax)
    .shr(rax, 16)
    .mov(dword(rdi, 8), eax)
    .mov(dword(rdi, 12), 0)
    .ret();

  a.label('idt_init');
  for (const [vector, label] of HANDLERS) a.mov(edi, vector).lea(rsi, mem(label)).call('idt_set');
  a.lidt(mem('kernel_idtr')).ret();

  // A fault handler: "PANIC: #XX" and the fields, from the frame the CPU pushed; then halt.
  for (const p of PANICS) {
    a.label(p.label).lea(rsi, mem(`${p.label}_msg`)).call('puts');
    for (const f of p.fields) {
      a.lea(rsi, mem(`msg_${f}`)).call('puts');
      if (f === 'error') a.mov(rax, qword(rsp));
      else if (f === 'cr2') a.mov(rax, cr2);
      else a.mov(rax, qword(rsp, p.errorCode ? 8 : 0));
      a.call('put_hex');
    }
    a.mov(edi, 0x0a).call('putc').jmp('halt');
  }

  // #BP: report and return; the registers puts and put_hex use are saved.
  const saved = [rax, rcx, rdx, rdi, rsi, r8];
  a.label('bp_handler');
  for (const r of saved) a.push(r);
  a.lea(rsi, mem('bp_handler_msg'))
    .call('puts')
    .mov(rax, qword(rsp, saved.length * 8))
    .call('put_hex')
    .mov(edi, 0x0a)
    .call('putc');
  for (const r of [...saved].reverse()) a.pop(r);
  a.iretq();

  a.label('halt').cli().hlt().jmp('halt');
}

/** Emits the handlers' strings (read-only data). */
export function emitInterruptStrings(a: Assembler): void {
  for (const p of PANICS) a.label(`${p.label}_msg`).db(p.text, 0);
  a.label('bp_handler_msg').db('kernel: breakpoint, returning to rip=', 0);
  a.label('msg_error').db(' error=', 0);
  a.label('msg_cr2').db(' cr2=', 0);
  a.label('msg_rip').db(' rip=', 0);
}

/**
 * Emits the GDT (its TSS descriptor without a base: `gdt_init` writes it), its GDTR, the IDTR and
 * the TSS (8-aligned data).
 */
export function emitInterruptData(a: Assembler): void {
  const [tssLow, tssHigh] = tssDescriptor64(0n);
  a.align(16)
    .label('kernel_gdt')
    .dq(0n, codeDescriptor64(), dataDescriptor(), dataDescriptor(3), codeDescriptor64(3), tssLow, tssHigh)
    .label('kernel_gdt_end')
    .align(8)
    .dw(0, 0, 0) // pads the pseudo-descriptors so that their bases are 8-aligned
    .label('kernel_gdtr')
    .dw(7 * 8 - 1)
    .dq(ref('kernel_gdt'))
    .dw(0, 0, 0)
    .label('kernel_idtr')
    .dw(IDT_LIMIT)
    .dq(ref('idt'))
    .align(16)
    .label('tss')
    .db(tss64())
    .label('tss_end');
}
