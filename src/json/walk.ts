/**
 * The JSON shape of a walk (DESIGN.md "JSON shapes"): addresses and raw values as lower-case hex
 * strings with 0x, one object per linear address. Shared by the CLI, the Node API and the WebSocket API.
 */
import { hex } from '../paging/addr.js';
import type { WalkFault, WalkResult, WalkStep } from '../paging/walk.js';

/** One step of a walk, as JSON. */
export interface WalkStepJson {
  level: string;
  index: number;
  entryAddress: string;
  raw: string;
  present: boolean;
  flags: string[];
  reserved: string;
  next: string | null;
  leaf: boolean;
  pageSize: number | null;
  protectionKey: number | null;
}

/** A walk fault, as JSON. */
export interface WalkFaultJson {
  level: string | null;
  reason: string;
  vector: number;
  errorCode: string;
  denials: string[];
  explanation: string;
}

/** A walk, as JSON. */
export interface WalkJson {
  va: string;
  mode: string;
  cr3: string;
  steps: WalkStepJson[];
  mapped: boolean;
  pa: string | null;
  pageSize: number | null;
  effective: { write: boolean; user: boolean; execute: boolean } | null;
  global: boolean | null;
  protectionKey: number | null;
  access: { kind: string; user: boolean; faults: boolean; errorCode: string | null; reason: string | null };
  fault: WalkFaultJson | null;
}

/** Shapes one step. */
export function walkStepJson(s: WalkStep): WalkStepJson {
  return {
    level: s.level,
    index: s.index,
    entryAddress: hex(s.entryAddress),
    raw: hex(s.raw),
    present: s.present,
    flags: [...s.flags],
    reserved: hex(s.reserved),
    next: s.next === null ? null : hex(s.next),
    leaf: s.leaf,
    pageSize: s.pageSize,
    protectionKey: s.protectionKey,
  };
}

/** Shapes a fault. */
export function walkFaultJson(f: WalkFault): WalkFaultJson {
  return {
    level: f.level,
    reason: f.reason,
    vector: f.vector,
    errorCode: hex(f.errorCode),
    denials: [...f.denials],
    explanation: f.explanation,
  };
}

/** Shapes a walk result. `mapped` means the translation completed (the access may still be refused). */
export function walkJson(w: WalkResult): WalkJson {
  const t = w.translation;
  const f = w.fault;
  return {
    va: hex(w.va),
    mode: w.mode,
    cr3: hex(w.cr3),
    steps: w.steps.map(walkStepJson),
    mapped: t !== null,
    pa: t ? hex(t.pa) : null,
    pageSize: t ? t.pageSize : null,
    effective: t ? { ...t.rights } : null,
    global: t ? t.global : null,
    protectionKey: t ? t.protectionKey : null,
    access: {
      kind: w.access.kind,
      user: w.access.user,
      faults: f !== null,
      errorCode: f ? hex(f.errorCode) : null,
      reason: f ? (f.denials.length > 0 ? f.denials.join(',') : f.reason) : null,
    },
    fault: f ? walkFaultJson(f) : null,
  };
}
