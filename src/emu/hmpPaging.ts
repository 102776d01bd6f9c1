/**
 * The monitor's page-table views, `info tlb` and `info mem`, in QEMU 7.2's formats
 * (target/i386/monitor.c): the tables under CR3 are read the way QEMU reads them (present bits
 * and PS, PML5 to PT in index order, its 50-bit address masks), and every leaf found is then put
 * to the emulator's own MMU debug path, which decides whether it maps: a leaf the MMU refuses
 * (a reserved bit anywhere on its path) is left out, where QEMU's monitor would show it. Rights in
 * `info mem` are the MMU's effective ones (R/W and U/S ANDed over the levels, as QEMU computes them).
 * Unlike QEMU 7.2, `info mem` works under 5-level paging (its present test there is inverted).
 */
import { hex } from './bits.js';
import type { Machine } from './machine.js';

/** One leaf entry of the tables. */
interface Leaf {
  /** The linear address it maps, before sign extension. */
  va: bigint;
  /** The raw entry. */
  entry: bigint;
  /** The size of the page: 4 KiB, 2 MiB or 1 GiB. */
  size: bigint;
}

const PRESENT = 1n;
const RW = 2n;
const US = 4n;
const PWT = 8n;
const PCD = 0x10n;
const ACCESSED = 0x20n;
const DIRTY = 0x40n;
const PS = 0x80n;
const GLOBAL = 0x100n;
const NX = 1n << 63n;

/** QEMU's masks of the next table's address and of a leaf's page address, by page size. */
const TABLE_MASK = 0x3fffffffff000n;
const PAGE_MASK: ReadonlyMap<bigint, bigint> = new Map([
  [1n << 12n, 0x3fffffffff000n],
  [1n << 21n, 0x3ffffffe00000n],
  [1n << 30n, 0x3ffffc0000000n],
]);

const U64 = (1n << 64n) - 1n;

/** QEMU's addr_canonical: `va` sign-extended from bit 47 (or 56 under LA57). */
function canonical(va: bigint, la57: boolean): bigint {
  const bits = la57 ? 57n : 48n;
  return va & (1n << (bits - 1n)) ? (va | (U64 << bits)) & U64 : va;
}

function entryAt(machine: Machine, table: bigint, index: number): bigint {
  return machine.memory.read64(Number(table) + index * 8);
}

/** The leaves under CR3, in linear-address order, found by present bits and PS alone (as QEMU's monitor walks). */
function* leaves(machine: Machine, la57: boolean): Generator<Leaf> {
  const root = machine.getRegister('cr3') & TABLE_MASK;
  const tops = la57
    ? Array.from({ length: 512 }, (_, i) => i).flatMap((l0) => {
        const e = entryAt(machine, root, l0);
        return e & PRESENT ? [{ va: BigInt(l0) << 48n, table: e & TABLE_MASK }] : [];
      })
    : [{ va: 0n, table: root }];
  for (const top of tops) {
    for (let l1 = 0; l1 < 512; l1++) {
      const pml4e = entryAt(machine, top.table, l1);
      if (!(pml4e & PRESENT)) continue;
      const va1 = top.va + (BigInt(l1) << 39n);
      for (let l2 = 0; l2 < 512; l2++) {
        const pdpe = entryAt(machine, pml4e & TABLE_MASK, l2);
        if (!(pdpe & PRESENT)) continue;
        const va2 = va1 + (BigInt(l2) << 30n);
        if (pdpe & PS) {
          yield { va: va2, entry: pdpe, size: 1n << 30n };
          continue;
        }
        for (let l3 = 0; l3 < 512; l3++) {
          const pde = entryAt(machine, pdpe & TABLE_MASK, l3);
          if (!(pde & PRESENT)) continue;
          const va3 = va2 + (BigInt(l3) << 21n);
          if (pde & PS) {
            yield { va: va3, entry: pde, size: 1n << 21n };
            continue;
          }
          for (let l4 = 0; l4 < 512; l4++) {
            const pte = entryAt(machine, pde & TABLE_MASK, l4);
            if (pte & PRESENT) yield { va: va3 + (BigInt(l4) << 12n), entry: pte & ~PS, size: 1n << 12n };
          }
        }
      }
    }
  }
}

/** The leaves the emulator's MMU accepts, each with its effective rights. */
function* mappedLeaves(machine: Machine): Generator<Leaf & { write: boolean; user: boolean }> {
  const la57 = (machine.getRegister('cr4') & (1n << 12n)) !== 0n;
  for (const leaf of leaves(machine, la57)) {
    const t = machine.translate(canonical(leaf.va, la57));
    if (t.ok) yield { ...leaf, write: t.translation.write, user: t.translation.user };
  }
}

function pagingEnabled(machine: Machine): boolean {
  return (machine.getRegister('cr0') & 0x80000000n) !== 0n;
}

/** `info tlb`: one line per mapped leaf, `VADDR: PADDR XGPDACTUW`; `PG disabled` without paging. */
export function infoTlb(machine: Machine): string[] {
  if (!pagingEnabled(machine)) return ['PG disabled'];
  const la57 = (machine.getRegister('cr4') & (1n << 12n)) !== 0n;
  const lines: string[] = [];
  for (const l of mappedLeaves(machine)) {
    const e = l.entry;
    const f = (bit: bigint, c: string): string => (e & bit ? c : '-');
    const flags = f(NX, 'X') + f(GLOBAL, 'G') + f(PS, 'P') + f(DIRTY, 'D') + f(ACCESSED, 'A') + f(PCD, 'C') + f(PWT, 'T') + f(US, 'U') + f(RW, 'W');
    lines.push(`${hex(canonical(l.va, la57), 16)}: ${hex(e & PAGE_MASK.get(l.size)!, 16)} ${flags}`);
  }
  return lines;
}

/** `info mem`: mapped ranges with equal effective rights merged, `START-END SIZE [u-]r[w-]`; `PG disabled` without paging. */
export function infoMem(machine: Machine): string[] {
  if (!pagingEnabled(machine)) return ['PG disabled'];
  const la57 = (machine.getRegister('cr4') & (1n << 12n)) !== 0n;
  const lines: string[] = [];
  let start = -1n;
  let end = 0n;
  let prot = 0n;
  const flush = (): void => {
    if (start < 0n) return;
    const size = end - start;
    lines.push(`${hex(canonical(start, la57), 16)}-${hex(canonical(end, la57), 16)} ${hex(canonical(size, la57), 16)} ${prot & US ? 'u' : '-'}r${prot & RW ? 'w' : '-'}`);
    start = -1n;
  };
  for (const l of mappedLeaves(machine)) {
    const p = PRESENT | (l.write ? RW : 0n) | (l.user ? US : 0n);
    if (start < 0n || p !== prot || l.va !== end) {
      flush();
      start = l.va;
      prot = p;
    }
    end = l.va + l.size;
  }
  flush();
  return lines;
}
