/**
 * What the code most likely did wrong, from a walk and the tables around it: the guesses an
 * experienced kernel developer makes when a walk stops, each with a confidence.
 *
 * - an empty entry where the index of the level above or below finds a present one: an index macro
 *   of the wrong level (PDPT_INDEX at the PD level); an isolated present neighbour: an off-by-one;
 * - a table pointer past RAM (or at zeros) whose value shifted right (or left) by 12 is a page table:
 *   a physical address stored into a bitfield that expects `addr >> 12`;
 * - a table pointer holding a canonical higher-half address: a virtual address stored as physical;
 * - CR4.LA57 and tables of the other depth;
 * - XD in a non-leaf entry above code;
 * - a stack, code or system structure the old tables map and the new ones do not;
 * - code (or an IDT) that reads as zeros through the new tables and as something else through the
 *   old ones: a wrong physical base.
 *
 * Written as a task (see `paging/memory.ts`): it reads frames, never writes them.
 */
import { hex, isCanonical } from '../paging/addr.js';
import { XD_HI } from '../paging/entry.js';
import { levelIndex, levelRules, type LevelName, type LevelRule } from '../paging/levels.js';
import { FRAME_SIZE, runAsync, runSync, type AsyncPhysMemory, type FrameData, type PagingTask, type PhysMemory } from '../paging/memory.js';
import { vaBitsOf, withCr3, type PagingContext } from '../paging/mode.js';
import { SUPERVISOR_READ, walkTask, type WalkResult } from '../paging/walk.js';

/** What kind of mistake a hint names. */
export type HintKind =
  /** The index of another level used at this one. */
  | 'index-typo'
  /** A present entry right next to the empty one: an index off by one. */
  | 'index-off-by-one'
  /** A table pointer that is a table's address shifted by 12 bits. */
  | 'unshifted-address'
  /** A table pointer that holds a virtual address. */
  | 'virtual-table-pointer'
  /** Tables of 4 levels under CR4.LA57=1, or of 5 levels without it. */
  | 'paging-depth'
  /** XD set in a non-leaf entry above code. */
  | 'nx-above-code'
  /** A huge page whose physical base is not aligned to its size. */
  | 'misaligned-huge-page'
  /** The stack is not mapped. */
  | 'stack-unmapped'
  /** Something the old tables map is missing from the new ones. */
  | 'lost-mapping'
  /** The page reads as zeros through these tables and as data through the old ones. */
  | 'moved-mapping'
  /** The page reads as zeros. */
  | 'zeros'
  /** IDTR still holds the BIOS's real-mode vector table, or an empty IDT: no IDT of the kernel's own. */
  | 'no-idt'
  /** NX (bit 63) in an entry while EFER.NXE=0, where the bit is reserved. */
  | 'nx-without-nxe';

/** How sure a hint is. */
export type Confidence = 'high' | 'medium' | 'low';

/** One guess at the mistake. */
export interface Hint {
  kind: HintKind;
  confidence: Confidence;
  /** The level of the entry the hint is about, when it is about one. */
  level: LevelName | null;
  /** Physical address of that entry. */
  entryAddress: bigint | null;
  /** One or two sentences in plain words. */
  text: string;
}

/** What the access that walked was for: it decides which mistakes are plausible. */
export type AccessRole = 'fetch' | 'stack' | 'data' | 'system';

/** What the diagnosis starts from. */
export interface DiagnoseInput {
  /** The context the walk went through. */
  ctx: PagingContext;
  /** The walk: usually one that faulted; a fetch that did not fault is checked for zeros. */
  walk: WalkResult;
  role?: AccessRole;
  /** RSP, when known: an access near it is a stack access. */
  rsp?: bigint;
  /** The address space loaded before (the old CR3 of a switch), when there is one. */
  before?: PagingContext | null;
  /** Readable physical memory, when known: pointers past it are suspicious. */
  ram?: readonly { start: bigint; end: bigint }[] | null;
}

const ORDER: Record<Confidence, number> = { high: 0, medium: 1, low: 2 };
/** Hints about how the tables are built, which explain a missing mapping. */
const STRUCTURAL = new Set<HintKind>(['index-typo', 'unshifted-address', 'virtual-table-pointer', 'paging-depth']);
const ADDRESS_MASK = 0x000ffffffffff000n;
/** How many bytes of a page are looked at to call it zeros. */
const ZERO_PROBE = 16;

/** A key under which hints say the same thing (one entry, one mistake), for callers that gather many. */
export function hintKey(h: Hint): string {
  return h.entryAddress === null ? `${h.kind}|${h.text}` : `${h.kind}|${h.entryAddress}`;
}

/** The hints, most confident first (as a task). */
export function* diagnoseTask(input: DiagnoseInput): PagingTask<Hint[]> {
  const { walk } = input;
  const role = input.role ?? (input.rsp !== undefined && nearStack(walk.va, input.rsp) ? 'stack' : walk.access.kind === 'exec' ? 'fetch' : 'data');
  const hints: Hint[] = [];
  const f = walk.fault;
  if (f && f.reason !== 'non-canonical' && f.level !== 'CR3') {
    const depth = yield* pagingDepth(input);
    if (depth) hints.push(depth);
    if (!depth && f.reason === 'not-present') hints.push(...(yield* indexTypos(input)));
    hints.push(...(yield* pointerHints(input)));
    if (f.reason === 'protection' && f.denials.includes('no-execute')) hints.push(...(yield* nxAbove(input)));
    if (f.reason === 'reserved-bit') {
      const m = misaligned(input);
      if (m) hints.push(m);
      const nx = nxWithoutNxe(input);
      if (nx) hints.push(nx);
    }
    if (f.reason === 'not-present' || f.reason === 'outside-memory') {
      const lost = yield* lostMapping(input, role);
      // A mistake in the tables' structure explains the missing mapping better than the mapping's absence does.
      const structural = hints.some((h) => STRUCTURAL.has(h.kind) && h.confidence === 'high');
      if (lost) hints.push(structural ? { ...lost, confidence: 'medium' } : lost);
    }
  }
  if (!f && walk.translation && (role === 'fetch' || role === 'system')) {
    const zeros = yield* zeroPage(input, role);
    if (zeros) hints.push(zeros);
  }
  return hints.sort((a, b) => ORDER[a.confidence] - ORDER[b.confidence]);
}

/**
 * A hint about IDTR itself, for problems in exception delivery: the real-mode vector table the BIOS
 * leaves (base 0, limit 0x3ff: what a multiboot loader hands over) or an empty IDT (limit 0) means
 * the kernel has not loaded an IDT of its own yet, so its first exception cannot be delivered.
 */
export function idtHint(idtr: { base: bigint; limit: number }): Hint | null {
  const where = `IDTR (base ${hex(idtr.base)}, limit ${hex(idtr.limit)})`;
  const next = 'every exception from here on escalates to a triple fault. Load an IDT with lidt before anything can fault (or before this switch)';
  if (idtr.base === 0n && idtr.limit === 0x3ff) {
    return { kind: 'no-idt', confidence: 'high', level: null, entryAddress: null, text: `${where} still holds the real-mode interrupt vector table the BIOS set up: the kernel has not loaded an IDT of its own, and ${next}.` };
  }
  if (idtr.limit === 0) {
    return { kind: 'no-idt', confidence: 'high', level: null, entryAddress: null, text: `${where} describes an empty IDT: ${next}.` };
  }
  return null;
}

/** The hints for a walk through synchronous memory. */
export function diagnose(mem: PhysMemory, input: DiagnoseInput): Hint[] {
  return runSync(diagnoseTask(input), mem);
}

/** The hints for a walk through asynchronous memory (a target). */
export function diagnoseAsync(mem: AsyncPhysMemory, input: DiagnoseInput): Promise<Hint[]> {
  return runAsync(diagnoseTask(input), mem);
}

/** True when `va` lies within a page of `rsp` (pushes go below it, pops and frames above). */
function nearStack(va: bigint, rsp: bigint): boolean {
  const d = va > rsp ? va - rsp : rsp - va;
  return d <= 0x1000n;
}

function* frameAt(pa: bigint): PagingTask<FrameData> {
  if (pa < 0n || pa >= 1n << 52n) return null;
  const base = pa - (pa % BigInt(FRAME_SIZE));
  const [frame] = yield { frames: [Number(base)] };
  return frame ?? null;
}

function inRam(input: DiagnoseInput, pa: bigint): boolean {
  if (pa < 0n || pa >= 1n << BigInt(input.ctx.maxPhyAddr)) return false;
  return !input.ram || input.ram.some((r) => pa >= r.start && pa < r.end);
}

/** Reads up to 8 entries a table may hold and says whether it looks like one: present entries pointing into RAM (or, shifted by 12, all of them). */
function* looksLikeTable(input: DiagnoseInput, pa: bigint): PagingTask<{ table: boolean; present: number; shifted: boolean }> {
  const frame = inRam(input, pa) ? yield* frameAt(pa) : null;
  if (!frame) return { table: false, present: 0, shifted: false };
  let present = 0;
  let plain = 0;
  let shifted = 0;
  for (let off = 0; off < FRAME_SIZE; off += 8) {
    const lo = frame.getUint32(off, true);
    if ((lo & 1) === 0) continue;
    const raw = frame.getBigUint64(off, true);
    present++;
    const to = raw & ADDRESS_MASK;
    if (inRam(input, to)) plain++;
    else if ((to & 0xfff000n) === 0n && inRam(input, to >> 12n)) shifted++;
  }
  const table = present > 0 && plain + shifted === present;
  return { table, present, shifted: table && shifted > 0 && plain === 0 };
}

/** The index of another level used at the faulting one, or an isolated present neighbour. */
function* indexTypos(input: DiagnoseInput): PagingTask<Hint[]> {
  const { walk, ctx } = input;
  const step = walk.steps[walk.steps.length - 1];
  if (!step || step.present) return [];
  const depth = ctx.levels.findIndex((l) => l.name === step.level);
  const rule = ctx.levels[depth]!;
  const table = step.entryAddress - BigInt(step.index * rule.entrySize);
  const frame = yield* frameAt(table);
  if (!frame) return [];
  const slots = 1 << rule.indexBits;
  const present = (i: number): boolean => i >= 0 && i < slots && (frame.getUint32(Number(table % 4096n) + i * rule.entrySize, true) & 1) !== 0;
  const out: Hint[] = [];
  for (const k of [depth - 1, depth + 1]) {
    const other = ctx.levels[k];
    if (!other || other.indexBits !== rule.indexBits) continue;
    const j = levelIndex(other, walk.va);
    if (j === step.index || !present(j)) continue;
    // The theory holds if the entry at the other level's index, taken for this address's, leads on to a
    // page; it is sure when that page is where the old tables map the address, and weak for index 0
    // (the first slot is usually in use for something else).
    const pa = yield* leadsTo(ctx, depth, entryAt(frame, Number(table % 4096n) + j * rule.entrySize, rule.entrySize), walk.va);
    if (pa === null) continue;
    const old = input.before && input.before.cr3 !== ctx.cr3 ? (yield* walkTask(input.before, walk.va, SUPERVISOR_READ)).translation : null;
    if (old ? old.pa !== pa : j === 0) continue;
    out.push({
      kind: 'index-typo',
      confidence: old ? 'high' : 'medium',
      level: rule.name,
      entryAddress: step.entryAddress,
      text:
        `${rule.name}[${step.index}] at ${hex(step.entryAddress)} is empty, but ${rule.name}[${j}] is present, and ${j} is the ${other.name} index of ${hex(walk.va)} ` +
        `((va >> ${other.shift}) & ${slots - 1}); taken as the entry for it, ${rule.name}[${j}] maps it to ${hex(pa)}` +
        (old ? ', where the old tables map it too' : '') +
        `. The ${other.name} index was most likely used at the ${rule.name} level (an index macro of the wrong level)`,
    });
  }
  if (out.length > 0) return out;
  for (const n of [step.index - 1, step.index + 1]) {
    const beyond = n < step.index ? n - 1 : n + 1;
    if (!present(n) || present(beyond)) continue;
    out.push({
      kind: 'index-off-by-one',
      confidence: 'medium',
      level: rule.name,
      entryAddress: step.entryAddress,
      text: `${rule.name}[${step.index}] at ${hex(step.entryAddress)} is empty, and its neighbour ${rule.name}[${n}] is present on its own: an index off by one?`,
    });
  }
  return out;
}

function entryAt(frame: DataView, offset: number, size: 4 | 8): bigint {
  return size === 8 ? frame.getBigUint64(offset, true) : BigInt(frame.getUint32(offset, true));
}

/** Where `raw`, taken as the entry at level `depth` for `va`, leads through the levels below: the physical address, or null. */
function* leadsTo(ctx: PagingContext, depth: number, raw: bigint, va: bigint): PagingTask<bigint | null> {
  const mask = (r: LevelRule): bigint => (r.entrySize === 8 ? ADDRESS_MASK : 0xfffff000n);
  let rule = ctx.levels[depth]!;
  let e = raw;
  if ((e & 1n) === 0n || depth === ctx.levels.length - 1) return null;
  for (let d = depth; ; ) {
    if (d === ctx.levels.length - 1 || (rule.ps === 'page' && (e & 0x80n) !== 0n)) {
      const size = BigInt(rule.pageSize);
      return (e & mask(rule) & ~(size - 1n)) + (va & (size - 1n));
    }
    d++;
    const next = ctx.levels[d]!;
    const at = (e & mask(rule)) + BigInt(levelIndex(next, va) * next.entrySize);
    const frame = yield* frameAt(at);
    if (!frame) return null;
    e = entryAt(frame, Number(at % 4096n), next.entrySize);
    if ((e & 1n) === 0n) return null;
    rule = next;
  }
}

/** Table pointers of the walk that are a table's address shifted by 12 bits, or a virtual address. */
function* pointerHints(input: DiagnoseInput): PagingTask<Hint[]> {
  const { walk, ctx } = input;
  const out: Hint[] = [];
  for (const [k, step] of walk.steps.entries()) {
    if (!step.present || step.leaf) continue;
    const pointer = step.raw & ADDRESS_MASK;
    const nextLevel = ctx.levels[k + 1]?.name ?? 'next';
    const at = `${step.level}[${step.index}] at ${hex(step.entryAddress)} (${hex(step.raw)})`;
    // A virtual address where a physical one belongs: bits 63:47 all ones.
    const asVa = step.raw & ~0xfffn & ((1n << 64n) - 1n);
    if (step.raw >> 47n === 0x1ffffn && isCanonical(asVa, 48)) {
      const spaces = [ctx, ...(input.before ? [input.before] : [])];
      let found: { pa: bigint; cr3: bigint } | null = null;
      for (const space of spaces) {
        const w = yield* walkTask(space, asVa, SUPERVISOR_READ);
        if (w.translation && (yield* looksLikeTable(input, w.translation.pa)).table) {
          found = { pa: w.translation.pa, cr3: space.cr3 };
          break;
        }
      }
      out.push({
        kind: 'virtual-table-pointer',
        confidence: found ? 'high' : 'medium',
        level: step.level,
        entryAddress: step.entryAddress,
        text: found
          ? `${at} holds the virtual address ${hex(asVa)}, which maps to physical ${hex(found.pa)} (a page table): an entry must hold the table's physical address (virtual minus the direct map's base)`
          : `${at} holds what looks like a virtual address (${hex(asVa)}): an entry must hold the table's physical address`,
      });
      continue;
    }
    const target = inRam(input, pointer) ? yield* frameAt(pointer) : null;
    if (target && !isZero(target)) continue;
    for (const [candidate, how] of [
      [pointer >> 12n, 'shifted left by 12: the full physical address was stored into a field that holds `addr >> 12` (a C bitfield `addr : 40` at bit 12 wants `phys >> 12`)'],
      [pointer << 12n, 'shifted right by 12: a page frame number was stored where the address belongs'],
    ] as const) {
      if (candidate === 0n || candidate % 4096n !== 0n || !inRam(input, candidate)) continue;
      const t = yield* looksLikeTable(input, candidate);
      if (!t.table) continue;
      out.push({
        kind: 'unshifted-address',
        confidence: 'high',
        level: step.level,
        entryAddress: step.entryAddress,
        text:
          `${at} points the ${nextLevel} table at ${hex(pointer)}${target ? ', which holds zeros' : ', outside RAM'}; ${hex(candidate)} holds a page table ` +
          `(${t.present} present entr${t.present === 1 ? 'y' : 'ies'}): the pointer is that address ${how}` +
          (t.shifted ? '; the entries of that table are shifted the same way' : ''),
      });
      break;
    }
  }
  return out;
}

function isZero(frame: DataView): boolean {
  for (let off = 0; off < FRAME_SIZE; off += 4) if (frame.getUint32(off, true) !== 0) return false;
  return true;
}

/** CR4.LA57 against tables of the other depth: the same root walked with the other number of levels maps the address. */
function* pagingDepth(input: DiagnoseInput): PagingTask<Hint | null> {
  const { ctx, walk } = input;
  if (ctx.mode !== '4-level' && ctx.mode !== '5-level') return null;
  const other = ctx.mode === '5-level' ? '4-level' : '5-level';
  const vaBits = vaBitsOf(other);
  if (!isCanonical(walk.va, vaBits)) return null;
  const alt: PagingContext = {
    ...ctx,
    mode: other,
    vaBits,
    levels: levelRules(other, { maxPhyAddr: ctx.maxPhyAddr, nxe: ctx.nxe, pse: ctx.pse, gbPages: ctx.gbPages }),
  };
  const w = yield* walkTask(withCr3(alt, ctx.cr3), walk.va, walk.access);
  if (!w.translation) return null;
  const la57 = ctx.mode === '5-level';
  return {
    kind: 'paging-depth',
    confidence: 'high',
    level: ctx.levels[0]!.name,
    entryAddress: BigInt(ctx.root),
    text: la57
      ? `CR4.LA57=1, so the CPU reads the table at CR3 ${hex(ctx.cr3)} as a PML5, but it is a PML4: walked with 4 levels, ${hex(walk.va)} maps to ${hex(w.translation.pa)}. Build a PML5 above it (PML5[${levelIndex(ctx.levels[0]!, walk.va)}] -> this PML4), or run with LA57 off`
      : `the table at CR3 ${hex(ctx.cr3)} is a PML5: walked with 5 levels, ${hex(walk.va)} maps to ${hex(w.translation.pa)}, but CR4.LA57=0 makes the CPU read it as a PML4`,
  };
}

/** A huge page (PS=1) whose reserved bits are its base's low bits: a base not aligned to the page size. */
function misaligned(input: DiagnoseInput): Hint | null {
  const { walk, ctx } = input;
  const step = walk.steps.at(-1);
  if (!step || !step.flags.includes('PS')) return null;
  const rule = ctx.levels.find((l) => l.name === step.level)!;
  if (rule.ps !== 'page' || rule.entrySize !== 8) return null;
  const size = BigInt(rule.pageSize);
  const low = (size - 1n) & ~0x1fffn; // bits shift-1..13 (bit 12 is PAT)
  if (step.reserved === 0n || (step.reserved & ~low) !== 0n) return null;
  const base = step.raw & 0x000fffffffffe000n;
  const aligned = base & ~(size - 1n);
  const words = rule.pageSize >= 1 << 30 ? '1 GiB' : '2 MiB';
  return {
    kind: 'misaligned-huge-page',
    confidence: 'high',
    level: step.level,
    entryAddress: step.entryAddress,
    text:
      `${step.level}[${step.index}] at ${hex(step.entryAddress)} maps a ${words} page from physical ${hex(base)}, which is not ${words} aligned ` +
      `(bits ${rule.shift - 1}:13 of a ${words} entry are reserved, so the CPU faults with RSVD=1). Map it with smaller pages, ` +
      `or map the ${words} page at ${hex(aligned)} and reach ${hex(base)} at offset ${hex(base - aligned)} into it`,
  };
}

/** An entry with bit 63 (NX) set while EFER.NXE=0, where it is reserved: the kernel uses NX without turning it on. */
function nxWithoutNxe(input: DiagnoseInput): Hint | null {
  const { walk, ctx } = input;
  const step = walk.steps.at(-1);
  if (!step || ctx.nxe || ctx.mode === '32-bit' || (step.reserved & (1n << 63n)) === 0n) return null;
  if (ctx.mode === 'PAE' && step.level === 'PDPT') return null; // reserved there whatever NXE says
  return {
    kind: 'nx-without-nxe',
    confidence: 'high',
    level: step.level,
    entryAddress: step.entryAddress,
    text:
      `${step.level}[${step.index}] at ${hex(step.entryAddress)} sets NX (bit 63), but EFER.NXE=0, where bit 63 is reserved: every access through ` +
      'it faults with RSVD=1. Set EFER.NXE (bit 11 of MSR 0xc0000080) before loading tables that use NX, or build them without NX',
  };
}

/** XD in non-leaf entries above a fetch that NX refused. */
function* nxAbove(input: DiagnoseInput): PagingTask<Hint[]> {
  const { walk, ctx } = input;
  const upper = walk.steps.filter((s) => !s.leaf && s.flags.includes('NX'));
  if (upper.length === 0) return [];
  const top = upper[0]!;
  const rule = ctx.levels.find((l) => l.name === top.level)!;
  let more = '';
  const table = top.entryAddress - BigInt(top.index * rule.entrySize);
  const frame = yield* frameAt(table);
  if (frame) {
    let present = 0;
    let nx = 0;
    for (let i = 0; i < 1 << rule.indexBits; i++) {
      const off = Number(table % 4096n) + i * 8;
      if ((frame.getUint32(off, true) & 1) === 0) continue;
      present++;
      if ((frame.getUint32(off + 4, true) & XD_HI) !== 0) nx++;
    }
    if (nx > 1) more = nx === present ? ` Every present ${top.level} entry (${present}) has XD set: nothing can execute anywhere.` : ` ${nx} of the ${present} present ${top.level} entries have XD set.`;
  }
  const levels = upper.map((s) => s.level).join(', ');
  return [
    {
      kind: 'nx-above-code',
      confidence: 'high',
      level: top.level,
      entryAddress: top.entryAddress,
      text:
        `XD is set in the non-leaf ${levels} entr${upper.length === 1 ? 'y' : 'ies'} above ${hex(walk.va)} (${top.level}[${top.index}] at ${hex(top.entryAddress)}): ` +
        `XD is ORed over the levels, so it forbids fetches from everything below, however the leaves are marked. Set NX on leaves only (or on upper entries that cover no code).${more}`,
    },
  ];
}

/** A stack, code or structure the old tables map and the new ones do not. */
function* lostMapping(input: DiagnoseInput, role: AccessRole): PagingTask<Hint | null> {
  const { walk, ctx, before } = input;
  const f = walk.fault!;
  const oldWalk = before && before.cr3 !== ctx.cr3 ? yield* walkTask(before, walk.va, SUPERVISOR_READ) : null;
  const old = oldWalk?.translation ? ` The old tables (CR3 ${hex(before!.cr3)}) map it, to physical ${hex(oldWalk.translation.pa)}.` : '';
  const where = f.level ? ` (the walk stops at the ${f.level} level)` : '';
  if (role === 'stack') {
    return {
      kind: 'stack-unmapped',
      confidence: 'high',
      level: f.level === 'CR3' ? null : f.level,
      entryAddress: walk.steps.at(-1)?.entryAddress ?? null,
      text:
        `the stack at ${hex(walk.va)}${input.rsp !== undefined ? ` (RSP ${hex(input.rsp)})` : ''} is outside every mapping of CR3 ${hex(ctx.cr3)}${where}.${old}` +
        ` Map the stack in the new tables, or switch to a stack they map before loading CR3.`,
    };
  }
  if (!old) return null;
  const what = role === 'fetch' ? 'the code running there' : role === 'system' ? 'the descriptor table there' : 'the data there';
  const fix = role === 'fetch' ? ' Map that code in the new tables (a 1:1 trampoline page for a loader), or jump to code they map before switching.' : ' Map it in the new tables too.';
  return {
    kind: 'lost-mapping',
    confidence: role === 'data' ? 'medium' : 'high',
    level: f.level === 'CR3' ? null : f.level,
    entryAddress: walk.steps.at(-1)?.entryAddress ?? null,
    text: `${hex(walk.va)} is not mapped by the new tables${where}, so ${what} is lost in the switch.${old}${fix}`,
  };
}

/** Code or a structure that reads as zeros through these tables: and through the old ones? */
function* zeroPage(input: DiagnoseInput, role: AccessRole): PagingTask<Hint | null> {
  const { walk, before, ctx } = input;
  const pa = walk.translation!.pa;
  if (!(yield* zeroBytes(pa))) return null;
  const what = role === 'fetch' ? 'the code' : 'the structure';
  if (before && before.cr3 !== ctx.cr3) {
    const w = yield* walkTask(before, walk.va, SUPERVISOR_READ);
    if (w.translation && w.translation.pa !== pa && !(yield* zeroBytes(w.translation.pa))) {
      const delta = pa - w.translation.pa;
      return {
        kind: 'moved-mapping',
        confidence: 'high',
        level: w.translation.leafLevel,
        entryAddress: walk.steps.at(-1)?.entryAddress ?? null,
        text:
          `${hex(walk.va)} maps to physical ${hex(pa)}, which holds zeros; the old tables (CR3 ${hex(before.cr3)}) map it to ${hex(w.translation.pa)}, where ${what} is. ` +
          `The new tables map it from the wrong physical base (off by ${delta < 0n ? '-' : '+'}${hex(delta < 0n ? -delta : delta)}): take the base the loader reports, not the linker script's` +
          (role === 'fetch' ? '. Executing zeros runs `add [rax], al` over and over.' : '.'),
      };
    }
  }
  return {
    kind: 'zeros',
    confidence: 'medium',
    level: walk.translation!.leafLevel,
    entryAddress: walk.steps.at(-1)?.entryAddress ?? null,
    text: `${hex(walk.va)} maps to physical ${hex(pa)}, which holds zeros: is it mapped from the right physical base?` + (role === 'fetch' ? ' (00 00 decodes as `add [rax], al`)' : ''),
  };
}

function* zeroBytes(pa: bigint): PagingTask<boolean> {
  const frame = yield* frameAt(pa);
  if (!frame) return false;
  const off = Number(pa % 4096n);
  for (let i = off; i < Math.min(FRAME_SIZE, off + ZERO_PROBE); i++) if (frame.getUint8(i) !== 0) return false;
  return true;
}
