import { describe, expect, it } from 'vitest';
import { PageTables } from '../../src/image/pageTables.js';
import { FrameAllocator, SparseMemory } from '../../src/image/sparseMemory.js';
import { runSync, type FrameRequest, type PhysMemory } from '../../src/paging/memory.js';
import { pagingContext } from '../../src/paging/mode.js';
import { R_NX, R_USER, R_WRITE, traverseTask, vaToVpn, vpnToVa, type EntryVisit, type TreeVisitor } from '../../src/paging/tree.js';

function machine() {
  const mem = new SparseMemory(1 << 20);
  const alloc = new FrameAllocator(0x10000, 1 << 20);
  const pt = new PageTables(mem, '4-level', alloc);
  const ctx = () => pagingContext({ cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n, cr3: pt.cr3 });
  return { mem, pt, alloc, ctx };
}

/** A visitor that descends everywhere (or where `descend` says) and records what it saw. */
function recorder(descend: (e: EntryVisit) => boolean = () => true) {
  const seen: string[] = [];
  const visits: EntryVisit[] = [];
  // `path` is live (valid during the call only): keep a copy.
  const paths: number[][] = [];
  const visitor: TreeVisitor = {
    entry(e) {
      visits.push(e);
      paths.push([...e.path]);
      const kind = e.leaf ? 'leaf' : e.child === null ? 'stop' : `-> 0x${e.child.toString(16)}${e.cycle ? ` (${e.cycle})` : ''}`;
      seen.push(`${'  '.repeat(e.depth)}${e.rule.name}[${e.index}] vpn 0x${e.vpn.toString(16)} r${e.rights} ${kind}`);
      return descend(e);
    },
    unreadable(e) {
      seen.push(`${'  '.repeat(e.depth)}unreadable 0x${e.child!.toString(16)}`);
    },
    rootUnreadable(root) {
      seen.push(`root unreadable 0x${root.toString(16)}`);
    },
    leaveTable(table, depth) {
      seen.push(`${'  '.repeat(depth)}leave 0x${table.toString(16)}`);
    },
  };
  return { seen, visits, paths, visitor };
}

describe('traverseTask', () => {
  it('visits present entries depth-first in VA order, with rights above and including each entry', () => {
    const { mem, pt, ctx } = machine();
    pt.map(0x7fc0000000n, 0x40000000, 0x40000000, { user: true, nx: true }); // PML4[0] PDPT[511], 1 GiB
    pt.map(0x1000n, 0x5000, 0x1000, { write: false, user: true });
    pt.map(0x200000n, 0x200000, 0x200000);
    const { seen, visits, paths, visitor } = recorder();
    runSync(traverseTask(ctx(), visitor), mem);
    expect(seen).toEqual([
      'PML4[0] vpn 0x0 r3 -> 0x11000',
      '  PDPT[0] vpn 0x0 r3 -> 0x12000',
      '    PD[0] vpn 0x0 r3 -> 0x13000',
      '      PT[1] vpn 0x1 r2 leaf',
      '      leave 0x13000',
      '    PD[1] vpn 0x200 r1 leaf',
      '    leave 0x12000',
      `  PDPT[511] vpn 0x7fc0000 r${R_WRITE | R_USER | R_NX} leaf`,
      '  leave 0x11000',
      'leave 0x10000',
    ]);
    const leaf = visits.findIndex((v) => v.rule.name === 'PT');
    expect(visits[leaf]!.above).toBe(R_WRITE | R_USER);
    expect(visits[leaf]!.rights).toBe(R_USER);
    expect(paths[leaf]).toEqual([0x10000, 0x11000, 0x12000, 0x13000]);
  });

  it('classifies references back up the path: recursive slots and loops', () => {
    const { mem, pt, ctx } = machine();
    pt.map(0x1000n, 0x5000, 0x1000);
    pt.linkTable(0xffffff0000000000n, 'PML4', pt.root); // PML4[510] = PML4
    const pdpt = pt.entryAddress(0x1000n, 'PDPT')! & ~0xfff;
    pt.linkTable(0x40000000n, 'PDPT', pdpt); // PDPT[1] = the PDPT itself
    pt.linkTable(0x80000000n, 'PDPT', pt.root); // PDPT[2] = the PML4
    const { visits, paths, visitor } = recorder((e) => e.cycle === null || (e.cycle === 'recursive' && e.depth < 2));
    runSync(traverseTask(ctx(), visitor), mem);
    const cycleAt = (depth: number, index: number, throughRootOnly = true): string | null | undefined =>
      visits.find(
        (v, i) =>
          v.depth === depth && v.index === index && (throughRootOnly ? paths[i]!.every((t) => t === pt.root) : paths[i]![1] === pdpt),
      )?.cycle;
    expect(cycleAt(0, 510)).toBe('recursive');
    expect(cycleAt(1, 510)).toBe('recursive'); // 510/510: still only the root on the path
    expect(cycleAt(1, 1, false)).toBe('loop');
    expect(cycleAt(1, 2, false)).toBe('loop');
    expect(cycleAt(1, 0, false)).toBe(null);
  });

  it('stays inside a window, reading only the tables that cover it', () => {
    const { mem, pt, ctx } = machine();
    pt.map(0x1000n, 0x5000, 0x1000);
    pt.map(0x40001000n, 0x6000, 0x1000);
    pt.map(0x40002000n, 0x7000, 0x1000);
    const { seen, visitor } = recorder();
    const reads: number[] = [];
    const spy: PhysMemory = { frame: (pa) => (reads.push(pa), mem.frame(pa)) };
    runSync(traverseTask(ctx(), visitor, { first: 0x40002, last: 0x40002 }), spy);
    expect(seen.filter((s) => !s.trim().startsWith('leave'))).toEqual([
      'PML4[0] vpn 0x0 r3 -> 0x11000',
      '  PDPT[1] vpn 0x40000 r3 -> 0x14000',
      '    PD[0] vpn 0x40000 r3 -> 0x15000',
      '      PT[2] vpn 0x40002 r1 leaf',
    ]);
    expect(reads).not.toContain(0x12000); // the PD of 0x1000
  });

  it('reports reserved bits and does not descend them', () => {
    const { mem, pt, ctx } = machine();
    pt.map(0x1000n, 0x5000, 0x1000);
    pt.setEntry(0x1000n, 'PD', pt.getEntry(0x1000n, 'PD') | (1n << 51n));
    const c = pagingContext({ cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n, cr3: pt.cr3 }, { maxPhyAddr: 48 });
    const { visits, visitor } = recorder();
    runSync(traverseTask(c, visitor), mem);
    const pd = visits.find((v) => v.rule.name === 'PD')!;
    expect(pd.rsvdHi).toBe(1 << 19);
    expect(pd.child).toBe(null);
    expect(visits.map((v) => v.rule.name)).toEqual(['PML4', 'PDPT', 'PD']);
    // The same tables under the default MAXPHYADDR (52): bit 51 is an address bit, and the PT is read.
    const all = recorder();
    runSync(traverseTask(ctx(), all.visitor), mem);
    expect(all.visits.map((v) => v.rule.name)).toEqual(['PML4', 'PDPT', 'PD']);
    expect(all.seen).toContain('    unreadable 0x8000000013000');
  });

  it('reports unreadable tables and an unreadable root', () => {
    const { mem, pt, ctx } = machine();
    pt.map(0x1000n, 0x5000, 0x1000);
    pt.setEntry(0x1000n, 'PD', 0x5000000n | 3n);
    const a = recorder();
    runSync(traverseTask(ctx(), a.visitor), mem);
    expect(a.seen).toContain('    unreadable 0x5000000');
    const b = recorder();
    runSync(traverseTask(pagingContext({ cr0: 0x80010001n, cr4: 0x20n, efer: 0xd00n, cr3: 0x7000000n }), b.visitor), mem);
    expect(b.seen).toEqual(['root unreadable 0x7000000']);
  });

  it('asks for each table\'s children in one batch and yields a checkpoint after every table', () => {
    const { mem, pt, ctx } = machine();
    for (let i = 0; i < 4; i++) pt.map(BigInt(i) * 0x200000n, 0x5000, 0x1000);
    const task = traverseTask(ctx(), recorder().visitor);
    const requests: number[] = [];
    let step = task.next();
    while (!step.done) {
      const req: FrameRequest = step.value;
      requests.push(req.frames.length);
      step = task.next(req.frames.map((f) => mem.frame(f)));
    }
    // root; PML4's child; PDPT's child; PD's 4 PTs; then a checkpoint per table (4 PTs, PD, PDPT, PML4).
    expect(requests).toEqual([1, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('page numbers and addresses', () => {
  it('sign-extends in long mode and zero-extends 32-bit linear addresses', () => {
    expect(vpnToVa(0x800000000, 48)).toBe(0xffff800000000000n);
    expect(vpnToVa(0x7ffffffff, 48)).toBe(0x7ffffffff000n);
    expect(vpnToVa(0x100000000000, 57)).toBe(0xff00000000000000n);
    expect(vpnToVa(0xfffff, 32)).toBe(0xfffff000n);
    expect(vpnToVa(0x80000, 32)).toBe(0x80000000n);
    expect(vaToVpn(0xffffffff80000000n, 48)).toBe(0xffff80000);
    expect(vaToVpn(0xffffffff80000000n, 57)).toBe(0x1ffffff80000);
    for (const [va, bits] of [[0xffff800000001000n, 48], [0xff00000000003000n, 57], [0xc0000000n, 32]] as const) {
      expect(vpnToVa(vaToVpn(va, bits), bits)).toBe(va);
    }
  });
});
