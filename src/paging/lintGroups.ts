/**
 * The lint's grouped findings, built once the whole tree has been seen: shared tables (one
 * finding per table), NX above code (one per upper-level entry), and coalesced VA ranges of W+X
 * kernel pages, user pages in the kernel half and pages mapping non-RAM physical memory.
 */
import { hex } from './addr.js';
import type { LintFinding } from './lint.js';
import { entryName, findingAt, kernelHalfVpn, rangeText, type Where } from './lintFinding.js';
import type { Run } from './lintRuns.js';
import type { NxAbove, PastRamLeaf } from './lintVisitor.js';
import type { PagingContext } from './mode.js';

const entries = (n: number): string => (n === 1 ? '1 leaf entry' : `${n} leaf entries`);

/** "a, b and c", or "a, b, ... and 5 more" past `max` items. */
function listText(items: readonly string[], max = 8): string {
  if (items.length <= 1) return items.join('');
  if (items.length > max) return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** One finding per table referenced from two or more entries: a warning, an error when the levels differ. */
export function sharedTableFindings(ctx: PagingContext, refs: ReadonlyMap<number, readonly Where[]>): LintFinding[] {
  const out: LintFinding[] = [];
  for (const [table, list] of refs) {
    const first = list[0];
    if (!first || list.length < 2) continue;
    const byLevel = new Map<string, Where[]>();
    for (const w of list) byLevel.set(w.level, [...(byLevel.get(w.level) ?? []), w]);
    const at = (ws: readonly Where[]): string => listText(ws.map((w) => hex(w.entryAddress)));
    const childOf = (w: Where): string => ctx.levels[w.depth + 1]?.name ?? 'table';
    if (byLevel.size === 1) {
      out.push(
        findingAt(ctx, first, 'shared-table', 'warning', `${childOf(first)} ${hex(table)} is referenced by ${first.level} entries at ${at(list)}`, {
          count: list.length,
          hint:
            `the entries alias one table: a change through one shows at every address that shares it; give each entry its own ${childOf(first)} ` +
            'unless the alias is meant (e.g. an identity map and a higher-half map sharing one PDPT)',
        }),
      );
      continue;
    }
    const uses = [...byLevel.values()].map((ws) => `as a ${childOf(ws[0]!)} by ${ws[0]!.level} ${ws.length === 1 ? 'entry' : 'entries'} at ${at(ws)}`);
    out.push(
      findingAt(ctx, first, 'shared-table', 'error', `table ${hex(table)} is used at ${byLevel.size} levels: ${uses.join('; ')}`, {
        count: list.length,
        hint: 'a table serves one level only: one of these entries uses the wrong level or index (e.g. the PDPT index macro used at the PD level)',
      }),
    );
  }
  return out;
}

/** One finding per upper-level entry with NX above leaves that leave their own NX clear. */
export function nxAboveCodeFindings(ctx: PagingContext, nxAbove: Iterable<NxAbove>, rip: bigint | null, ripVpn: number | null): LintFinding[] {
  const out: LintFinding[] = [];
  for (const { where: w, count } of nxAbove) {
    if (count === 0) continue;
    const last = w.vpn + w.pages - 1;
    const ripHere = rip !== null && ripVpn !== null && ripVpn >= w.vpn && ripVpn <= last;
    out.push(
      findingAt(
        ctx,
        w,
        'nx-above-code',
        ripHere ? 'error' : 'warning',
        `${entryName(w)} sets NX, so nothing in ${rangeText(ctx, w.vpn, last)} can execute (NX at any level forbids fetches), ` +
          `yet ${entries(count)} below it leave${count === 1 ? 's' : ''} NX clear` +
          (ripHere ? `; RIP ${hex(rip)} is in this range: the next instruction fetch faults` : ''),
        {
          count,
          hint: 'clear NX in upper-level entries and set it in the leaves of data pages: an upper-level NX takes execute away from everything below it',
        },
      ),
    );
  }
  return out;
}

/** One warning per run of supervisor pages that are writable and executable. */
export function wxKernelFindings(ctx: PagingContext, runs: readonly Run[]): LintFinding[] {
  return runs.map((r) =>
    findingAt(
      ctx,
      r.first,
      'wx-kernel',
      'warning',
      `${rangeText(ctx, r.start, r.end)} is supervisor, writable and executable (W+X): ${entries(r.count)}, R/W=1 and NX clear at every level`,
      {
        count: r.count,
        firstVpn: r.start,
        lastVpn: r.end,
        hint: 'map kernel code read-only and data NX (W^X): a bug that writes a W+X page can then no longer plant code',
      },
    ),
  );
}

/** One finding per run of user-accessible pages in the kernel half; an error when SMAP or SMEP is on. */
export function userInKernelFindings(ctx: PagingContext, runs: readonly Run[]): LintFinding[] {
  const half = kernelHalfVpn(ctx);
  const longMode = ctx.mode === '4-level' || ctx.mode === '5-level';
  const where = longMode ? `linear-address bit ${ctx.vaBits - 1} set` : `at or above 0x80000000, the split pagewalk assumes for ${ctx.mode} paging`;
  const effects = [
    ctx.smap ? 'with CR4.SMAP=1 the kernel\'s own data accesses there fault' : null,
    ctx.smep ? 'with CR4.SMEP=1 the kernel cannot execute there' : null,
  ].filter((s): s is string => s !== null);
  return runs
    .filter((r) => r.start >= half)
    .map((r) =>
      findingAt(
        ctx,
        r.first,
        'user-in-kernel-half',
        effects.length > 0 ? 'error' : 'warning',
        `${rangeText(ctx, r.start, r.end)} is user-accessible (U/S=1 at every level) in the kernel half (${where}): ${entries(r.count)}` +
          (effects.length > 0 ? `; ${effects.join(', and ')}` : ''),
        {
          count: r.count,
          firstVpn: r.start,
          lastVpn: r.end,
          hint: 'clear U/S in the leaves (or an upper-level entry) of kernel mappings; a common cause is one set of flags (0x7) used for every entry',
        },
      ),
    );
}

/** Pages that map no RAM, coalesced where VA and PA both continue; info (MMIO is legitimate). */
export function pastRamFindings(ctx: PagingContext, leaves: readonly PastRamLeaf[]): LintFinding[] {
  const sorted = [...leaves].sort((a, b) => a.where.vpn - b.where.vpn);
  const groups: { first: PastRamLeaf; lastVpn: number; paEnd: number; count: number }[] = [];
  for (const l of sorted) {
    const g = groups[groups.length - 1];
    if (g && g.first.where.level === l.where.level && g.lastVpn + 1 === l.where.vpn && g.paEnd === l.pa) {
      g.lastVpn += l.where.pages;
      g.paEnd += l.size;
      g.count++;
    } else {
      groups.push({ first: l, lastVpn: l.where.vpn + l.where.pages - 1, paEnd: l.pa + l.size, count: 1 });
    }
  }
  return groups.map(({ first, lastVpn, paEnd, count }) => {
    const w = first.where;
    const who = count === 1 ? entryName(w) : `${count} ${w.level} entries from ${entryName(w)}`;
    const pse36 = w.level === 'PD' && ctx.mode === '32-bit' && first.pa >= 2 ** 32;
    const more: { count: number; lastVpn: number; hint?: string } = { count, lastVpn };
    if (pse36) {
      more.hint =
        `bits 20:13 of a 4 MiB entry are physical address bits 39:32 (PSE-36), not low address bits: ` +
        `if ${hex(w.raw & 0xfffff000n)} was meant, a 4 MiB page's base must be 4 MiB aligned`;
    }
    return findingAt(
      ctx,
      w,
      'page-past-ram',
      'info',
      `${who} map${count === 1 ? 's' : ''} ${rangeText(ctx, w.vpn, lastVpn)} to physical ${hex(first.pa)}..${hex(paEnd - 1)}, which is not RAM: ` +
        'right for MMIO (a framebuffer, the local APIC), wrong for memory',
      more,
    );
  });
}
