/**
 * The page-table code a hobby kernel (or a UEFI loader) links in, in the style of a small C
 * `vmm.c`: a bump allocator of zeroed frames, `map_page` that walks from the root creating tables,
 * and `map_range`. Physical memory is reached through `phys_offset` (the direct map, or 0 where
 * memory is identity-mapped). The variations are the bugs the scenarios show: the per-level index
 * shifts (the PD slot taking the PDPT shift), the entry format (an address, or a C bitfield that
 * is handed a full address), and the flags of the tables the walk creates.
 */
import { qword, type Assembler } from '../../../asm/index.js';
import { cl, dl, eax, ebx, ecx, r10, r11, r12, r13, r8, r9, r9d, rax, rbx, rcx, rdi, rdx, rsi } from '../../../asm/registers.js';
import { PTE } from '../layout.js';

/** How the kernel stores a physical address in an entry. */
export type EntryFormat =
  /** `entry = phys | flags`, as the hardware reads it. */
  | 'address'
  /** A bitfield `addr:40` at bit 12 handed a full address: `entry = (phys << 12) | flags`, read back as `entry >> 12`. */
  | 'bitfield';

/** What the page-table code is built with. */
export interface PagingCode {
  /** Shift of the index at levels 1 (PT) to 5 (PML5); the right ones are 12, 21, 30, 39, 48. */
  shifts?: readonly [number, number, number, number, number];
  format?: EntryFormat;
}

/** The right index shifts, PT up to PML5. */
export const LEVEL_SHIFTS = [12, 21, 30, 39, 48] as const;

/** The flags of the table entries `map_page` creates: present, writable, user (the leaf decides). */
export const TABLE_FLAGS = PTE.P | PTE.RW | PTE.US;

const ADDRESS_MASK = 0x000ffffffffff000n;

/**
 * Emits `alloc_table` (rax = a zeroed frame; preserves the other registers), `map_page` (rdi = va,
 * rsi = pa, rdx = leaf flags, PS for a 2 MiB page; clobbers rax, rcx, r8-r11) and `map_range`
 * (the same plus rcx = page count; advances rdi and rsi; clobbers rax, rcx, r8-r11).
 */
export function emitPagingText(a: Assembler, code: PagingCode = {}): void {
  const format = code.format ?? 'address';

  a.label('alloc_table')
    .push(rdi)
    .push(rcx)
    .mov(rax, qword('next_frame'))
    .add(qword('next_frame'), 0x1000)
    .push(rax)
    .mov(rdi, qword('phys_offset'))
    .add(rdi, rax)
    .mov(ecx, 512)
    .xor(eax, eax)
    .repStosq()
    .pop(rax)
    .pop(rcx)
    .pop(rdi)
    .ret();

  const encode = (reg: typeof r11) => {
    if (format === 'bitfield') a.shl(reg, 12);
  };

  a.label('map_page')
    .push(rbx)
    .mov(ebx, 1)
    .test(dl, Number(PTE.PS))
    .jz('map_page_start')
    .mov(ebx, 2)
    .label('map_page_start')
    .mov(rax, qword('pml_root'))
    .mov(r8, qword('paging_levels'))
    .label('map_page_level')
    .lea(r9, qword('level_shift'))
    .mov(rcx, qword({ base: r9, index: r8, scale: 8 }))
    .mov(r9, rdi)
    .shr(r9, cl)
    .and(r9d, 0x1ff)
    .mov(r10, qword('phys_offset'))
    .add(r10, rax)
    .lea(r10, qword({ base: r10, index: r9, scale: 8 }))
    .cmp(r8, rbx)
    .je('map_page_leaf')
    .mov(rax, qword(r10))
    .test(eax, 1)
    .jnz('map_page_present')
    .call('alloc_table')
    .mov(r11, rax);
  encode(r11);
  a.or(r11, qword('table_flags')).mov(qword(r10), r11).jmp('map_page_down').label('map_page_present');
  if (format === 'bitfield') a.shr(rax, 12).mov(r11, 0xffffffffffn).and(rax, r11);
  else a.mov(r11, ADDRESS_MASK).and(rax, r11);
  a.label('map_page_down').dec(r8).jmp('map_page_level').label('map_page_leaf').mov(r11, rsi);
  encode(r11);
  a.or(r11, rdx).mov(qword(r10), r11).pop(rbx).ret();

  a.label('map_range')
    .push(r12)
    .push(r13)
    .mov(r12, rcx)
    .mov(r13, 0x1000)
    .test(dl, Number(PTE.PS))
    .jz('map_range_next')
    .mov(r13, 0x200000)
    .label('map_range_next')
    .test(r12, r12)
    .jz('map_range_done')
    .call('map_page')
    .add(rdi, r13)
    .add(rsi, r13)
    .dec(r12)
    .jmp('map_range_next')
    .label('map_range_done')
    .pop(r13)
    .pop(r12)
    .ret();
}

/**
 * Emits the page-table code's variables (8-aligned): `phys_offset`, `next_frame`, `pml_root`,
 * `paging_levels`, `table_flags` and the `level_shift` table (indexed by level, 1 = PT).
 */
export function emitPagingData(a: Assembler, code: PagingCode = {}, tableFlags: bigint = TABLE_FLAGS): void {
  const shifts = code.shifts ?? LEVEL_SHIFTS;
  a.align(8)
    .label('phys_offset')
    .dq(0)
    .label('next_frame')
    .dq(0)
    .label('pml_root')
    .dq(0)
    .label('paging_levels')
    .dq(4)
    .label('table_flags')
    .dq(tableFlags)
    .label('level_shift')
    .dq(0, ...shifts);
}
