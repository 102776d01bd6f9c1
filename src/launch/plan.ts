/**
 * What `launch` adds to the user's QEMU command line, and what it keeps. Pure: the arguments in,
 * the arguments to run and where everything is out.
 *
 * - A gdbstub: the user's (`-s`, `-gdb tcp:...`, `-gdb unix:...`, `-gdb chardev:ID`), else
 *   `-gdb unix:DIR/gdb.sock,server=on,wait=off` in launch's private directory (no port to collide).
 * - Two QMP sockets of pagewalk's own, always: QEMU serves one client per QMP socket, so taking the
 *   user's `-qmp` would lock their tools out. One is for pagewalk's target (or the user's pagewalk
 *   commands), one for launch itself (quit, events).
 * - `-action reboot=shutdown,shutdown=pause`, for the keys the user did not set (`-no-reboot` sets
 *   reboot, `-no-shutdown` shutdown): a triple fault then stops the guest with its state kept.
 * - `-d int,cpu_reset` unless the user gave `-d`, and `-D LOG` unless the user gave `-D` (a user's
 *   `-d` without `-D` logs to QEMU's console, as they asked).
 * - `-S` when pagewalk attaches and the user did not ask for it, so nothing runs before pagewalk is
 *   attached (it then resumes the guest).
 * - The console: what a kernel developer expects of `-nographic` or `-serial mon:stdio`: COM1 in
 *   the terminal, QEMU's monitor behind Ctrl-A c. `-serial mon:stdio` is added when the user chose
 *   nothing for the serial port (no `-serial`, `-nographic`, serial `-device`, curses display) and
 *   nothing else uses stdio; a console the user sent elsewhere stays there.
 */
import { join } from 'node:path';
import { LaunchError } from './errors.js';
import { optionProperties, readQemuArgs, splitOptionValue, type QemuArg } from './qemuArgs.js';

/** What to run, and where pagewalk finds everything. */
export interface LaunchPlan {
  /** QEMU's arguments: the user's, then pagewalk's. */
  readonly args: readonly string[];
  /** The arguments pagewalk added (a suffix of `args`). */
  readonly added: readonly string[];
  /** The gdbstub as pagewalk reaches it: `unix:PATH` or `HOST:PORT`. */
  readonly gdb: string;
  /** True when the gdbstub is pagewalk's (in the private directory). */
  readonly gdbAdded: boolean;
  /** pagewalk's QMP socket for its target (or the user's pagewalk commands). */
  readonly qmp: string;
  /** launch's own QMP socket (quit, events). */
  readonly control: string;
  /** The `-d` log file, or null when QEMU logs to its console (the user's `-d` without `-D`). */
  readonly log: string | null;
  /** True when `-S` was added: the guest waits for pagewalk to resume it. */
  readonly stopAdded: boolean;
  /** True when QEMU's console (COM1, or what the user put on stdio) shows in the terminal. */
  readonly consoleOnStdio: boolean;
  /** What pagewalk decided, in words, for the user. */
  readonly notes: readonly string[];
}

/** Options of {@link planLaunch}. */
export interface PlanOptions {
  /** launch's private directory (for the sockets, and the log unless `log` is given). */
  dir: string;
  /** Where the `-d` log goes when pagewalk adds `-D` (default DIR/qemu.log). */
  log?: string;
  /** Whether pagewalk attaches to the gdbstub itself (adds `-S`). */
  attach: boolean;
}

const OPTION_ALIASES: Record<string, string> = { '-qmp-pretty': '-qmp' };

function optionsNamed(items: readonly QemuArg[], ...names: string[]): (QemuArg & { kind: 'option' })[] {
  return items.filter((a): a is QemuArg & { kind: 'option' } => a.kind === 'option' && names.includes(OPTION_ALIASES[a.name] ?? a.name));
}

/** The chardevs the command line defines, by id. */
function chardevs(items: readonly QemuArg[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const o of optionsNamed(items, '-chardev')) {
    const props = optionProperties(o.value ?? '');
    const id = props.get('id');
    if (id) out.set(id, props);
  }
  return out;
}

function loopback(host: string): string {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host;
}

/** Where pagewalk reaches the gdbstub `-gdb spec` creates. Throws LaunchError (E_ARGS) for one it cannot reach. */
export function gdbEndpointOf(spec: string, devices: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map()): string {
  const unreachable = (why: string): LaunchError =>
    new LaunchError('E_ARGS', `-gdb ${spec}: ${why}; use -gdb tcp::PORT or -gdb unix:PATH,server=on,wait=off, or leave -gdb out and pagewalk adds one`);
  if (spec.startsWith('chardev:')) {
    const id = spec.slice('chardev:'.length);
    const dev = devices.get(id);
    if (!dev) throw unreachable(`there is no -chardev with id=${id}`);
    if (dev.get('') !== 'socket') throw unreachable(`chardev ${id} is a ${dev.get('') ?? 'device'}, not a socket pagewalk can connect to`);
    const path = dev.get('path');
    if (path) return `unix:${path}`;
    const port = dev.get('port');
    if (port && /^\d+$/.test(port)) return `${loopback(dev.get('host') ?? '')}:${port}`;
    throw unreachable(`chardev ${id} has neither path= nor port=`);
  }
  const first = splitOptionValue(spec)[0] ?? '';
  if (first.startsWith('unix:') && first.length > 5) return `unix:${first.slice(5)}`;
  if (first.startsWith('tcp:')) {
    const m = /^(.*):(\d+)$/.exec(first.slice(4));
    if (m) return `${loopback(m[1]!)}:${m[2]}`;
  }
  if (first === 'none') throw unreachable('QEMU has no gdbstub then, and launch attaches to one');
  throw unreachable(`pagewalk cannot connect to a ${first.split(':')[0]} gdbstub`);
}

/** The reboot and shutdown actions the command line sets. */
function actions(items: readonly QemuArg[]): { reboot: string | null; shutdown: string | null } {
  let reboot: string | null = null;
  let shutdown: string | null = null;
  for (const o of items) {
    if (o.kind !== 'option') continue;
    if (o.name === '-no-reboot') reboot = 'shutdown';
    else if (o.name === '-no-shutdown') shutdown = 'pause';
    else if (o.name === '-action') {
      const p = optionProperties(o.value ?? '');
      reboot = p.get('reboot') ?? reboot;
      shutdown = p.get('shutdown') ?? shutdown;
    }
  }
  return { reboot, shutdown };
}

/** True when some option already puts a character device on stdio (two cannot share it). */
function stdioTaken(items: readonly QemuArg[], devices: ReadonlyMap<string, ReadonlyMap<string, string>>): boolean {
  for (const o of optionsNamed(items, '-serial', '-monitor', '-qmp', '-parallel', '-debugcon', '-gdb')) {
    if (/(^|:)stdio(,|$)/.test(o.value ?? '')) return true;
  }
  return [...devices.values()].some((d) => d.get('') === 'stdio');
}

/**
 * The command line to run for the user's `args` (without the program name). Throws LaunchError
 * (E_ARGS) for a gdbstub pagewalk cannot reach, or `-daemonize`.
 */
export function planLaunch(args: readonly string[], o: PlanOptions): LaunchPlan {
  const items = readQemuArgs(args);
  const devices = chardevs(items);
  const notes: string[] = [];
  const added: string[] = [];
  if (optionsNamed(items, '-daemonize').length > 0) throw new LaunchError('E_ARGS', '-daemonize: QEMU would leave the terminal launch runs it in; leave it out');

  // The gdbstub.
  const gdbOptions = optionsNamed(items, '-gdb', '-s');
  const lastGdb = gdbOptions[gdbOptions.length - 1];
  let gdb: string;
  const gdbAdded = lastGdb === undefined;
  if (lastGdb === undefined) {
    const path = join(o.dir, 'gdb.sock');
    added.push('-gdb', `unix:${path},server=on,wait=off`);
    gdb = `unix:${path}`;
  } else {
    gdb = lastGdb.name === '-s' ? '127.0.0.1:1234' : gdbEndpointOf(lastGdb.value ?? '', devices);
    notes.push(`the gdbstub is yours (${lastGdb.name === '-s' ? '-s' : `-gdb ${lastGdb.value}`}): ${gdb}`);
  }

  // QMP: pagewalk's own two.
  const qmp = join(o.dir, 'qmp.sock');
  const control = join(o.dir, 'launch-qmp.sock');
  added.push('-qmp', `unix:${qmp},server=on,wait=off`, '-qmp', `unix:${control},server=on,wait=off`);
  const userQmp = optionsNamed(items, '-qmp');
  if (userQmp.length > 0) notes.push(`your QMP (${userQmp.map((q) => q.value).join(', ')}) is left to your tools: pagewalk uses its own`);

  // Post-mortem: a triple fault stops the guest with its state kept.
  const act = actions(items);
  const want: string[] = [];
  if (act.reboot === null) want.push('reboot=shutdown');
  if (act.shutdown === null) want.push('shutdown=pause');
  if (want.length > 0) added.push('-action', want.join(','));
  if (act.reboot !== null && act.reboot !== 'shutdown') notes.push(`your -action reboot=${act.reboot}: a triple fault resets the guest and its state is lost (reboot=shutdown,shutdown=pause keeps it)`);
  else if (act.reboot === 'shutdown' && act.shutdown !== null && act.shutdown !== 'pause') {
    notes.push(`your -action shutdown=${act.shutdown}: a triple fault ends QEMU and its state is lost (shutdown=pause keeps it)`);
  }

  // The exception log.
  const dOpt = optionsNamed(items, '-d').at(-1);
  const bigD = optionsNamed(items, '-D').at(-1);
  let log: string | null;
  if (dOpt === undefined) {
    added.push('-d', 'int,cpu_reset');
    if (bigD === undefined) {
      log = o.log ?? join(o.dir, 'qemu.log');
      added.push('-D', log);
    } else {
      log = bigD.value;
    }
  } else {
    const items2 = splitOptionValue(dOpt.value ?? '');
    const missing = ['int', 'cpu_reset'].filter((i) => !items2.includes(i));
    if (missing.length > 0) notes.push(`your -d ${dOpt.value} lacks ${missing.join(' and ')}: pagewalk explain-log needs int,cpu_reset`);
    log = bigD?.value ?? null;
    if (log === null) notes.push(`your -d without -D: QEMU's log goes to its console`);
  }
  const accel = optionsNamed(items, '-accel', '-enable-kvm', '-machine').some((a) => a.name === '-enable-kvm' || /(^|[,=])kvm(,|$)/.test(a.value ?? ''));
  if (accel) notes.push('under KVM, -d int logs no guest exceptions (QEMU does not see them); use TCG for explain-log');

  // Attach before the guest runs.
  const stopAdded = o.attach && optionsNamed(items, '-S').length === 0;
  if (stopAdded) added.push('-S');

  // The console.
  const serial = optionsNamed(items, '-serial');
  const nographic = optionsNamed(items, '-nographic').length > 0;
  const curses = optionsNamed(items, '-display', '-curses').some((d) => d.name === '-curses' || (d.value ?? '').startsWith('curses'));
  const serialDevice = optionsNamed(items, '-device').some((d) => /^(isa-serial|pci-serial)/.test(d.value ?? ''));
  let consoleOnStdio: boolean;
  if (serial.length > 0) {
    consoleOnStdio = serial.some((s) => /(^|:)stdio(,|$)/.test(s.value ?? ''));
    if (!consoleOnStdio) notes.push(`the serial port goes where your -serial ${serial.map((s) => s.value).join(' -serial ')} sends it, not to this terminal`);
  } else if (nographic) {
    consoleOnStdio = true;
    notes.push('-nographic: COM1 and QEMU\'s monitor are in this terminal (Ctrl-A c switches, Ctrl-A x quits QEMU)');
  } else if (curses) {
    consoleOnStdio = true;
    notes.push('the curses display is in this terminal; COM1 is one of its consoles');
  } else if (serialDevice) {
    consoleOnStdio = stdioTaken(items, devices);
    notes.push('your serial -device is left as it is');
  } else if (stdioTaken(items, devices)) {
    consoleOnStdio = true;
    notes.push('stdio is already taken by your options: no serial console added');
  } else {
    consoleOnStdio = true;
    added.push('-serial', 'mon:stdio');
    notes.push('COM1 is in this terminal (-serial mon:stdio: Ctrl-A c for QEMU\'s monitor, Ctrl-A x quits QEMU)');
  }
  return { args: [...args, ...added], added, gdb, gdbAdded, qmp, control, log, stopAdded, consoleOnStdio, notes };
}
