/**
 * The x86 assembler over iced-x86: registers, operands, the `Assembler` builder, the assembled
 * result, and decoding back.
 */
export { Assembler } from './assembler.js';
export { Assembly } from './assembly.js';
export { disassemble, formatLines, type DecodedLine } from './disassemble.js';
export { AsmError, type AsmErrorCode } from './errors.js';
export type { Bits, Condition } from './forms.js';
export {
  byte,
  distance,
  dword,
  mem,
  qword,
  ref,
  word,
  type Address,
  type Expr,
  type Imm,
  type Mem,
  type MemSpec,
  type Scale,
  type Target,
  type Value,
} from './operands.js';
export * from './registers.js';
