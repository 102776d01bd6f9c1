/**
 * Decoding a page-fault error code bit by bit, in plain words, with the misreadings people make
 * (0x10 is "instruction fetch, not present", not "NX"; 0x3 is "present + write", not "not present").
 */

/** One bit of a #PF error code. */
export interface ErrorCodeBit {
  bit: number;
  name: 'P' | 'W/R' | 'U/S' | 'RSVD' | 'I/D' | 'PK' | 'SS' | 'HLAT' | 'SGX';
  set: boolean;
  meaning: string;
}

/** A decoded #PF error code. */
export interface DecodedErrorCode {
  code: number;
  present: boolean;
  write: boolean;
  user: boolean;
  reserved: boolean;
  fetch: boolean;
  protectionKey: boolean;
  shadowStack: boolean;
  hlat: boolean;
  sgx: boolean;
  /** Set bits no architecture defines (a corrupt value). */
  undefinedBits: number;
  bits: ErrorCodeBit[];
  /** The access the code describes: 'exec' only when I/D=1. */
  access: 'read' | 'write' | 'exec';
  /** One line: who did what to which kind of page. */
  summary: string;
  /** Traps in reading this code, when it is one people misread. */
  pitfalls: string[];
}

/** Error thrown for a value that cannot be a #PF error code; `code` is stable. */
export class ErrorCodeError extends Error {
  readonly code = 'E_ERROR_CODE';
  constructor(message: string) {
    super(message);
    this.name = 'ErrorCodeError';
  }
}

const DEFINED = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x8000;

/** Decodes `code` (the value QEMU prints as `e=` and the CPU pushes). Throws ErrorCodeError outside 0..0xffffffff. */
export function decodeErrorCode(code: number): DecodedErrorCode {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new ErrorCodeError(`a #PF error code is a 32-bit value, not ${code}`);
  }
  const is = (m: number): boolean => (code & m) !== 0;
  const present = is(0x1);
  const write = is(0x2);
  const user = is(0x4);
  const reserved = is(0x8);
  const fetch = is(0x10);
  const protectionKey = is(0x20);
  const shadowStack = is(0x40);
  const hlat = is(0x80);
  const sgx = is(0x8000);
  const bits: ErrorCodeBit[] = [
    {
      bit: 0,
      name: 'P',
      set: present,
      meaning: present
        ? 'the page was present: the access broke a protection rule' + (reserved ? ' (here: a reserved bit, see RSVD)' : '')
        : 'the page was not present: some level of the walk had P=0',
    },
    { bit: 1, name: 'W/R', set: write, meaning: write ? 'the access was a write' : 'the access was a read or an instruction fetch' },
    {
      bit: 2,
      name: 'U/S',
      set: user,
      meaning: user ? 'the access came from user mode (CPL 3)' : 'the access came from supervisor mode (CPL 0-2), or was an implicit system access',
    },
    { bit: 3, name: 'RSVD', set: reserved, meaning: reserved ? 'a paging entry had a reserved bit set' : 'no reserved bit was involved' },
    {
      bit: 4,
      name: 'I/D',
      set: fetch,
      meaning: fetch
        ? 'the access was an instruction fetch'
        : 'not an instruction fetch (or one on a CPU with neither EFER.NXE nor CR4.SMEP, which never sets I/D)',
    },
    { bit: 5, name: 'PK', set: protectionKey, meaning: protectionKey ? 'a protection key (PKRU/PKRS) forbade the access' : 'no protection key was involved' },
    { bit: 6, name: 'SS', set: shadowStack, meaning: shadowStack ? 'a shadow-stack access' : 'not a shadow-stack access' },
    { bit: 7, name: 'HLAT', set: hlat, meaning: hlat ? 'the fault came from HLAT paging' : 'ordinary paging' },
    { bit: 15, name: 'SGX', set: sgx, meaning: sgx ? 'an SGX access-control violation' : 'not SGX' },
  ];
  const access = fetch ? 'exec' : write ? 'write' : 'read';
  const who = user ? 'user-mode' : 'supervisor';
  const what = fetch ? 'instruction fetch' : write ? 'write' : 'read';
  const why = reserved
    ? 'hit a reserved bit in a paging entry'
    : protectionKey
      ? 'was refused by a protection key'
      : present
        ? 'was refused by the page protections (read-only, NX, U/S, SMEP or SMAP)'
        : 'found no mapping (an entry with P=0)';
  const summary = `${who} ${what} that ${why}`;

  const pitfalls: string[] = [];
  if (fetch && !present) {
    pitfalls.push(
      `0x${code.toString(16)} is not an NX fault: P=0 means nothing was mapped at the fetched address; an NX fault has P=1 (0x${(code | 1).toString(16)})`,
    );
  }
  if (present && write && !reserved) {
    pitfalls.push(`0x${code.toString(16)} is not "not present": P=1 means the page was mapped and the write was refused (read-only, or U/S/SMAP)`);
  }
  if (reserved) {
    pitfalls.push('QEMU 7.2 (TCG) reports reserved-bit faults without P (e.g. 0x8, 0xa, 0x18); the SDM says P=1 whenever RSVD=1');
  }
  return {
    code,
    present,
    write,
    user,
    reserved,
    fetch,
    protectionKey,
    shadowStack,
    hlat,
    sgx,
    undefinedBits: (code & ~DEFINED) >>> 0,
    bits,
    access,
    summary,
    pitfalls,
  };
}
