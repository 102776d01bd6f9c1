/**
 * QEMU's command line read the way QEMU reads it: `-name value` pairs, `--name` the same as
 * `-name`, the few options that take no value, and anything else a positional argument (a disk
 * image). Values are split into their comma-separated parts (`,,` is a literal comma).
 */
/** QEMU's options that take no value (qemu-options.hx, QEMU 7.2, with older spellings still accepted). */
const NO_VALUE = new Set([
  '-h', '-help', '-version', '-mem-prealloc', '-audio-help', '-snapshot', '-usb', '-nographic', '-portrait',
  '-full-screen', '-win2k-hack', '-no-fd-bootchk', '-no-acpi', '-no-hpet', '-singlestep', '-preconfig', '-S', '-s',
  '-enable-kvm', '-no-kvm', '-xen-attach', '-xen-domid-restrict', '-no-reboot', '-no-shutdown', '-daemonize',
  '-only-migratable', '-nodefaults', '-no-user-config', '-async-teardown', '-enable-sync-profile', '-curses', '-sdl',
  '-no-frame', '-alt-grab', '-ctrl-grab', '-no-quit', '-localtime', '-semihosting', '-old-param', '-enable-fips',
  '-show-cursor', '-no-kvm-irqchip', '-no-kvm-pit', '-no-kvm-pit-reinjection', '-rtc-td-hack', '-tdf',
]);

/** One item of a QEMU command line. */
export type QemuArg =
  /** An option, with its value (null for options that take none, or one missing at the end). */
  | { readonly kind: 'option'; readonly name: string; readonly value: string | null; readonly index: number }
  /** Anything that is not an option (QEMU takes a lone file name as the first disk). */
  | { readonly kind: 'positional'; readonly value: string; readonly index: number };

/** Reads QEMU's arguments (without the program name). */
export function readQemuArgs(args: readonly string[]): QemuArg[] {
  const out: QemuArg[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') {
      out.push({ kind: 'positional', value: a, index: i });
      continue;
    }
    const name = a.startsWith('--') ? a.slice(1) : a;
    if (NO_VALUE.has(name)) {
      out.push({ kind: 'option', name, value: null, index: i });
      continue;
    }
    // An option at the very end without its value is left for QEMU to complain about.
    const value = args[i + 1] ?? null;
    out.push({ kind: 'option', name, value, index: i });
    i++;
  }
  return out;
}

/** The comma-separated parts of an option value (`,,` stays a comma inside a part). */
export function splitOptionValue(value: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === ',' && value[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

/** The `key=value` parts of an option value, by key (a bare first part, such as a backend name, is under ''). */
export function optionProperties(value: string): Map<string, string> {
  const props = new Map<string, string>();
  splitOptionValue(value).forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq >= 0) props.set(p.slice(0, eq), p.slice(eq + 1));
    else if (i === 0) props.set('', p);
    else props.set(p, 'on');
  });
  return props;
}
