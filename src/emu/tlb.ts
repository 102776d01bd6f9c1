/**
 * The translation lookaside buffer: translations cached per 4 KiB linear page and tagged with the
 * PCID they were made under, global ones (G=1 with CR4.PGE=1) shared by every PCID. Nothing here
 * re-reads the tables: a cached translation is used until it is invalidated, exactly as stale as
 * on hardware.
 */
import type { PageRights } from './mmuRights.js';

/** One cached translation of a 4 KiB linear page. */
export interface TlbEntry extends PageRights {
  /** Physical address of the 4 KiB page. */
  frame: number;
  /** The leaf's D bit was set when cached (a write through a clean entry walks again to set it). */
  dirty: boolean;
  /** Cached as global (survives CR3 loads). */
  global: boolean;
  /** The PCID it was cached under. */
  pcid: number;
  /** First 4 KiB page number of the whole mapping (a 2 MiB or 1 GiB page spans many). */
  baseVpn: number;
  /** Size of the mapping in bytes. */
  pageSize: number;
  /** Physical address of the leaf entry. */
  leafAddress: number;
}

/** How many entries the TLB holds before it drops everything (hardware may evict at any time). */
const CAPACITY = 1 << 16;

/** A TLB keyed by linear page number (va >> 12) and PCID. */
export class Tlb {
  private readonly byPcid = new Map<number, Map<number, TlbEntry>>();
  private readonly globals = new Map<number, TlbEntry>();
  private count = 0;

  /** The entry for page `vpn` usable under `pcid`, or undefined. */
  lookup(vpn: number, pcid: number): TlbEntry | undefined {
    return this.byPcid.get(pcid)?.get(vpn) ?? this.globals.get(vpn);
  }

  /** Caches `entry` for page `vpn`. */
  insert(vpn: number, entry: TlbEntry): void {
    if (this.count >= CAPACITY) this.flushAll();
    if (entry.global) {
      this.globals.set(vpn, entry);
    } else {
      let m = this.byPcid.get(entry.pcid);
      if (!m) {
        m = new Map();
        this.byPcid.set(entry.pcid, m);
      }
      m.set(vpn, entry);
    }
    this.count++;
  }

  /** Drops the entries of `vpn` under `pcid` and the global one (a fault on that page, a clean-entry write). */
  drop(vpn: number, pcid: number): void {
    this.byPcid.get(pcid)?.delete(vpn);
    this.globals.delete(vpn);
  }

  /** INVLPG: drops every entry of `pcid` and every global entry whose mapping contains page `vpn`. */
  invalidatePage(vpn: number, pcid: number): void {
    const hit = (e: TlbEntry): boolean => vpn >= e.baseVpn && vpn < e.baseVpn + e.pageSize / 4096;
    const m = this.byPcid.get(pcid);
    if (m) for (const [k, e] of m) if (hit(e)) m.delete(k);
    for (const [k, e] of this.globals) if (hit(e)) this.globals.delete(k);
  }

  /** Drops the non-global entries of `pcid` (MOV to CR3 without the no-flush bit). */
  flushPcid(pcid: number): void {
    this.byPcid.delete(pcid);
  }

  /** Drops every non-global entry of every PCID. */
  flushNonGlobal(): void {
    this.byPcid.clear();
  }

  /** Drops everything, global entries included. */
  flushAll(): void {
    this.byPcid.clear();
    this.globals.clear();
    this.count = 0;
  }

  /** Every cached entry with its page number (for inspection and tests). */
  entries(): { vpn: number; entry: TlbEntry }[] {
    const out: { vpn: number; entry: TlbEntry }[] = [];
    for (const m of this.byPcid.values()) for (const [vpn, entry] of m) out.push({ vpn, entry });
    for (const [vpn, entry] of this.globals) out.push({ vpn, entry });
    return out;
  }
}
