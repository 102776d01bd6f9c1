/**
 * GDB target descriptions (`target.xml` and the annexes it `xi:include`s) to a register map:
 * name -> register number, width, type and byte offset in the `g` packet. Comments are stripped
 * first (QEMU comments some registers out); numbering follows document order, include by
 * include, except where a `regnum` attribute sets it (QEMU gives only `rax regnum="0"`).
 * Pure: annexes are fetched by a function the caller passes in.
 */
import { RspError } from './errors.js';

/** One register of the target. */
export interface RegisterInfo {
  readonly name: string;
  /** The number `p`/`P` take (hex on the wire). */
  readonly regnum: number;
  readonly bitsize: number;
  /** `int`, `code_ptr`, `i387_ext`, `vec128`, or a type the description defines (`x64_cr0`, ...). */
  readonly type: string;
  /** Where its bytes start in a `g` reply (registers are laid out in register-number order). */
  readonly offset: number;
  /** The `group` attribute, if any. */
  readonly group: string | null;
  /** The `<feature name=...>` it belongs to, if any. */
  readonly feature: string | null;
}

/** A parsed target description. */
export interface TargetDescription {
  /** The `<architecture>`, e.g. `i386:x86-64`, or null. */
  readonly architecture: string | null;
  /** Every register, by register number. */
  readonly registers: readonly RegisterInfo[];
  /** Registers by name. */
  readonly byName: ReadonlyMap<string, RegisterInfo>;
  /** The bytes of a complete `g` reply. */
  readonly gSize: number;
}

/** One item of one annex, in document order. */
export type TargetXmlItem =
  | {
      readonly kind: 'reg';
      readonly name: string;
      readonly bitsize: number;
      readonly regnum: number | null;
      readonly type: string;
      readonly group: string | null;
      readonly feature: string | null;
    }
  | { readonly kind: 'include'; readonly href: string };

/** One annex, parsed but not resolved. */
export interface TargetXmlDocument {
  readonly architecture: string | null;
  readonly items: readonly TargetXmlItem[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of tag.matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    out.set(m[1]!, unescapeXml(m[2] ?? m[3] ?? ''));
  }
  return out;
}

function bad(annex: string, why: string): RspError {
  return new RspError('E_PROTOCOL', `target description ${annex}: ${why}`);
}

function decimal(annex: string, what: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) throw bad(annex, `${what} is not a number: '${v}'`);
  return parseInt(v, 10);
}

/** Parses one annex into its registers and includes, in document order. Throws E_PROTOCOL. */
export function parseTargetXml(xml: string, annex = 'target.xml'): TargetXmlDocument {
  const text = xml.replace(/<!--[\s\S]*?-->/g, '');
  if (text.includes('<!--')) throw bad(annex, 'unterminated comment');
  const items: TargetXmlItem[] = [];
  let architecture: string | null = null;
  let feature: string | null = null;
  const tags = /<(\/?)([A-Za-z_][\w:.-]*)([^>]*)>/g;
  for (let m = tags.exec(text); m; m = tags.exec(text)) {
    const [, closing, name, rest] = m as unknown as [string, string, string, string];
    if (closing) {
      if (name === 'feature') feature = null;
      continue;
    }
    const attrs = attributes(rest);
    if (name === 'architecture') {
      const end = text.indexOf('</architecture>', tags.lastIndex);
      if (end < 0) throw bad(annex, '<architecture> is not closed');
      architecture = unescapeXml(text.slice(tags.lastIndex, end).trim());
    } else if (name === 'feature') {
      feature = attrs.get('name') ?? null;
      if (rest.trimEnd().endsWith('/')) feature = null;
    } else if (name === 'xi:include') {
      const href = attrs.get('href');
      if (!href) throw bad(annex, 'xi:include without href');
      items.push({ kind: 'include', href });
    } else if (name === 'reg') {
      const regName = attrs.get('name');
      const bits = attrs.get('bitsize');
      if (!regName) throw bad(annex, 'a <reg> has no name');
      if (bits === undefined) throw bad(annex, `register ${regName} has no bitsize`);
      const bitsize = decimal(annex, `bitsize of ${regName}`, bits);
      if (bitsize <= 0 || bitsize % 8 !== 0) throw bad(annex, `register ${regName} is ${bitsize} bits, not whole bytes`);
      const regnum = attrs.get('regnum');
      items.push({
        kind: 'reg',
        name: regName,
        bitsize,
        regnum: regnum === undefined ? null : decimal(annex, `regnum of ${regName}`, regnum),
        type: attrs.get('type') ?? 'int',
        group: attrs.get('group') ?? null,
        feature,
      });
    }
  }
  return { architecture, items };
}

/** How many annexes deep includes may nest before the description is taken as cyclic. */
const MAX_INCLUDE_DEPTH = 16;

/**
 * Reads `root` and everything it includes through `load`, and numbers the registers.
 * Throws E_PROTOCOL on malformed XML, include cycles or two registers with one number or name;
 * errors from `load` pass through.
 */
export async function resolveTargetDescription(
  load: (annex: string) => Promise<string>,
  root = 'target.xml',
): Promise<TargetDescription> {
  const regs: Extract<TargetXmlItem, { kind: 'reg' }>[] = [];
  let architecture: string | null = null;
  const visit = async (annex: string, chain: readonly string[]): Promise<void> => {
    if (chain.includes(annex) || chain.length >= MAX_INCLUDE_DEPTH) {
      throw bad(annex, `include cycle or nesting too deep: ${[...chain, annex].join(' -> ')}`);
    }
    const doc = parseTargetXml(await load(annex), annex);
    architecture ??= doc.architecture;
    for (const item of doc.items) {
      if (item.kind === 'reg') regs.push(item);
      else await visit(item.href, [...chain, annex]);
    }
  };
  await visit(root, []);
  return numberRegisters(architecture, regs);
}

/** Numbers registers in order (a `regnum` sets the number, the next ones follow it) and lays out `g`. */
function numberRegisters(architecture: string | null, regs: readonly Extract<TargetXmlItem, { kind: 'reg' }>[]): TargetDescription {
  const numbered: { reg: (typeof regs)[number]; regnum: number }[] = [];
  let next = 0;
  for (const reg of regs) {
    const regnum = reg.regnum ?? next;
    numbered.push({ reg, regnum });
    next = regnum + 1;
  }
  numbered.sort((a, b) => a.regnum - b.regnum);
  const registers: RegisterInfo[] = [];
  const byName = new Map<string, RegisterInfo>();
  let offset = 0;
  for (const { reg, regnum } of numbered) {
    const prev = registers.at(-1);
    if (prev && prev.regnum === regnum) throw bad('target.xml', `registers ${prev.name} and ${reg.name} share number ${regnum}`);
    if (byName.has(reg.name)) throw bad('target.xml', `register ${reg.name} is described twice`);
    const info: RegisterInfo = {
      name: reg.name,
      regnum,
      bitsize: reg.bitsize,
      type: reg.type,
      offset,
      group: reg.group,
      feature: reg.feature,
    };
    offset += reg.bitsize / 8;
    registers.push(info);
    byName.set(reg.name, info);
  }
  return { architecture, registers, byName, gSize: offset };
}
