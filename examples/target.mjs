// The target options every example takes, as the CLI spells them, turned into attach() options:
//   --emu SCENARIO | --example | --dump FILE | --gdb HOST:PORT [--qmp PATH] [--mem-path FILE]
//   [--cr3 X] [--elf FILE]
// plus the example's own options. Exits 2 with a usage line on bad options, as pagewalk does.
import { parseArgs } from 'node:util';
import { attach, ApiError } from 'pagewalk';

const TARGET_OPTIONS = {
  emu: { type: 'string' },
  example: { type: 'boolean' },
  dump: { type: 'string' },
  gdb: { type: 'string' },
  qmp: { type: 'string' },
  'mem-path': { type: 'string' },
  cr3: { type: 'string' },
  elf: { type: 'string' },
};

/**
 * Parses argv with the target options and `own` (parseArgs option specs), attaches, and returns
 * { session, values }. `usage` is printed on bad options.
 */
export async function attachFromArgs(usage, own = {}) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...TARGET_OPTIONS, ...own }, allowPositionals: false }));
  } catch (e) {
    fail(2, `${e.message}\nusage: ${usage}`);
  }
  const { emu, example, dump, gdb, qmp, cr3, elf } = values;
  const memPath = values['mem-path'];
  const options = Object.fromEntries(Object.entries({ emu, example, dump, gdb, qmp, memPath, cr3, elf }).filter(([, v]) => v !== undefined));
  try {
    return { session: await attach(options), values };
  } catch (e) {
    if (e instanceof ApiError) fail(e.code === 'E_BAD_INPUT' ? 2 : 3, `${e.message}\nusage: ${usage}`);
    throw e;
  }
}

/** Prints `message` to stderr and exits with `status`. */
export function fail(status, message) {
  process.stderr.write(`${message}\n`);
  process.exit(status);
}

/** A size as people say it: 4K, 2M, 1G, 4.1G. */
export function human(bytes) {
  const b = BigInt(bytes);
  for (const [size, unit] of [[1n << 40n, 'T'], [1n << 30n, 'G'], [1n << 20n, 'M'], [1n << 10n, 'K']]) {
    if (b < size) continue;
    if (b % size === 0n) return `${b / size}${unit}`;
    const tenths = (b * 10n) / size;
    return `${tenths / 10n}.${tenths % 10n}${unit}`;
  }
  return `${b}`;
}

/** rwx letters and u/s for a range or a walk's effective rights. */
export function rights(r) {
  return `r${r.write ? 'w' : '-'}${r.execute ? 'x' : '-'} ${r.user ? 'user' : 'supervisor'}`;
}
