/**
 * The one place that imports iced-x86. It is a CommonJS build around WebAssembly: its named
 * exports load under Node's ESM (tsx, vitest and compiled output alike), and every object it hands
 * out lives in WASM memory until `free()` is called, so callers free what they create.
 */
import { Code } from 'iced-x86';
import { AsmError } from './errors.js';

export {
  BlockEncoder,
  BlockEncoderOptions,
  Code,
  Decoder,
  DecoderOptions,
  Encoder,
  FlowControl,
  Formatter,
  FormatterSyntax,
  Instruction,
  InstructionInfoFactory,
  MemoryOperand,
  MemorySizeExt,
  OpAccess,
  Register,
  RegisterExt,
  RepPrefixKind,
} from 'iced-x86';

const CODES = Code as unknown as Readonly<Record<string, number | undefined>>;

/** The iced-x86 `Code` named `name` (e.g. `Add_rm64_imm8`); throws AsmError E_OPERANDS if there is none. */
export function codeNamed(name: string, what: string): Code {
  const c = CODES[name];
  if (c === undefined) throw new AsmError('E_OPERANDS', `${what}: x86 has no such form (${name})`);
  return c as Code;
}

/** Something iced-x86 allocated in WASM memory. */
export interface Freeable {
  free(): void;
}

/** Runs `body`, then frees every object it passed through `keep` (also when it throws). */
export function withFreed<T>(body: (keep: <F extends Freeable>(o: F) => F) => T): T {
  const held: Freeable[] = [];
  try {
    return body((o) => {
      held.push(o);
      return o;
    });
  } finally {
    for (const o of held) o.free();
  }
}

/** iced-x86's error message without what it appends: " : 0xIP instruction" (BlockEncoder) or " (instruction)" (Encoder). */
export function icedReason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/ : 0x[0-9a-fA-F]+ .*$/s, '').replace(/ \([^()]*\)$/, '');
}
