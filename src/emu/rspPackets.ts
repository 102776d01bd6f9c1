/**
 * What the emulator's gdbstub answers to each packet, after QEMU 7.2 (QEMU-FACTS.md): the
 * handshake (`qSupported`, target.xml in chunks of at most 2045 bytes), registers (`g`/`G`, and
 * `p`/`P` only once a target description was read on the connection), memory (`m`/`M` through the
 * current CR3, or physical with `Qqemu.PhyMemMode`; 0x800 bytes at most; `E14` where a page does
 * not translate), breakpoints and watchpoints (`Z0`-`Z4`), execution (`c`, `s`, `vCont`, `D`, `k`),
 * monitor commands (`qRcmd`, output in `O` packets), thread queries, and an empty reply for
 * everything QEMU does not support.
 */
import { bytesToHex, hexToBytes, hexToText, textToHex } from '../rsp/codec.js';
import type { HmpMonitor } from './hmpCommands.js';
import type { WatchKind } from './machine.js';
import { TARGET_ANNEXES, readAllRegisters, readGdbRegister, writeAllRegisters, writeGdbRegister } from './rspRegisters.js';
import { SessionError, type EmuSession, type VmStop } from './session.js';

/** State of the gdbstub that outlives connections, as in QEMU. */
export interface RspServerState {
  /** Set for good once a client offers `multiprocess+`: thread ids become `p01.01`, a plain `D` is refused. */
  multiprocess: boolean;
  /** `Qqemu.PhyMemMode`: `m`/`M` take physical addresses. */
  physicalMemory: boolean;
  /** `Qqemu.sstep` flags (ENABLE=1, NOIRQ=2, NOTIMER=4); without ENABLE a step is a continue. */
  sstep: number;
  /** Breakpoints inserted through `Z0`/`Z1`, with how many times each. */
  breakpoints: Map<bigint, number>;
  /** Watchpoints inserted through `Z2`-`Z4`, in order. */
  watchpoints: { address: bigint; length: number; kind: WatchKind }[];
  /** The monitor `qRcmd` talks to. */
  monitor: HmpMonitor;
}

/** What a connection keeps for itself. */
export interface RspLink {
  /** A target description has been read on this connection. */
  targetXmlRead: boolean;
}

/** The packets to send in answer (none while the VM runs), then what to do once they are out. */
export interface Answer {
  packets: (string | Uint8Array)[];
  after?: () => void;
}

/** QEMU 7.2's `qSupported` reply, whatever the client offers. */
export const SUPPORTED = 'PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+';

/** The most bytes one `m` reads. */
const MAX_READ = 0x800;
/** The most bytes of a target description per `qXfer` reply. */
const MAX_XFER_CHUNK = 2045;
/** The most characters of text per `O` packet. */
const MAX_OUTPUT_TEXT = 2000;

const reply = (...packets: (string | Uint8Array)[]): Answer => ({ packets });
const EMPTY = reply('');
const OK = reply('OK');
const E22 = reply('E22');
const E14 = reply('E14');

/** A hex number as QEMU's qemu_strtou64 reads it (an optional 0x, either case), or null. */
function hexNumber(text: string | undefined): bigint | null {
  if (text === undefined) return null;
  const t = text.replace(/^0[xX]/, '');
  if (!/^[0-9a-fA-F]{1,16}$/.test(t)) return null;
  return BigInt(`0x${t}`);
}

/** Answers one packet. */
export function handlePacket(payload: string, session: EmuSession, state: RspServerState, link: RspLink): Answer {
  const machine = session.machine;
  switch (payload[0]) {
    case '?':
      // QEMU answers T05 whatever the reason, and forgets the debugger's breakpoints (a new debugger is starting).
      return { packets: [`T05thread:${threadId(state.multiprocess)};`], after: () => removeAll(session, state) };
    case 'g':
      return reply(bytesToHex(readAllRegisters(machine)));
    case 'G': {
      const bytes = hexData(payload.slice(1));
      if (!bytes) return E22;
      writeAllRegisters(machine, bytes);
      return OK;
    }
    case 'p': {
      if (!link.targetXmlRead) return EMPTY;
      const n = hexNumber(payload.slice(1));
      const bytes = n === null ? null : readGdbRegister(machine, Number(n));
      return bytes ? reply(bytesToHex(bytes)) : E14;
    }
    case 'P': {
      if (!link.targetXmlRead) return EMPTY;
      const m = /^P([0-9a-fA-F]+)=(.*)$/.exec(payload);
      const value = m ? hexData(m[2]!) : null;
      if (!m || !value) return E22;
      writeGdbRegister(machine, Number.parseInt(m[1]!, 16), value);
      return OK;
    }
    case 'm':
      return readMemory(payload, session, state);
    case 'M':
      return writeMemory(payload, session, state);
    case 'Z':
    case 'z':
      return breakpoint(payload, session, state);
    case 'c':
    case 'C':
    case 's':
    case 'S':
      return resume(payload, session, state);
    case 'v':
      return vPacket(payload, session, state);
    case 'D':
      if (state.multiprocess && !payload.startsWith('D;')) return E22;
      return {
        packets: ['OK'],
        after: () => {
          removeAll(session, state);
          if (!session.needsReset) session.cont();
        },
      };
    case 'k':
      return { packets: [], after: () => session.quit('host-gdb-kill') };
    case 'H':
      return /^H[gc]/.test(payload) ? OK : EMPTY;
    case 'T':
      return isOurThread(payload.slice(1)) ? OK : E22;
    case 'q':
      return query(payload, session, state, link);
    case 'Q':
      return setting(payload, state);
    default:
      return EMPTY;
  }
}

/** Hex data as bytes, or null when it is not hex. */
function hexData(text: string): Uint8Array | null {
  try {
    return hexToBytes(text);
  } catch {
    return null;
  }
}

function readMemory(payload: string, session: EmuSession, state: RspServerState): Answer {
  const [addrText, lenText] = payload.slice(1).split(',');
  const address = hexNumber(addrText);
  const length = hexNumber(lenText);
  if (address === null || length === null || length > BigInt(MAX_READ)) return E22;
  if (length === 0n) return EMPTY;
  const n = Number(length);
  const machine = session.machine;
  if (state.physicalMemory) {
    // Physical reads never fail: past RAM (and past anything a Number holds exactly) they read zeros.
    const bytes = address + length <= BigInt(machine.memory.ramSize) ? machine.readPhysical(address, n) : beyondRam(session, address, n);
    return reply(bytesToHex(bytes));
  }
  try {
    return reply(bytesToHex(machine.readVirtual(address, n)));
  } catch {
    return E14;
  }
}

/** What a physical read returns when it reaches past RAM: RAM where there is some, then zeros. */
function beyondRam(session: EmuSession, address: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const ram = BigInt(session.machine.memory.ramSize);
  if (address < ram) out.set(session.machine.readPhysical(address, Number(ram - address)));
  return out;
}

function writeMemory(payload: string, session: EmuSession, state: RspServerState): Answer {
  const m = /^M([^,]+),([^:]+):(.*)$/.exec(payload);
  const address = hexNumber(m?.[1]);
  const length = hexNumber(m?.[2]);
  const data = m ? hexData(m[3]!) : null;
  if (address === null || length === null || !data || length > BigInt(data.length)) return E22;
  const bytes = data.subarray(0, Number(length));
  if (state.physicalMemory) {
    if (address < BigInt(session.machine.memory.ramSize)) session.machine.writePhysical(address, bytes);
    return OK;
  }
  try {
    session.machine.writeVirtual(address, bytes);
    return OK;
  } catch {
    return E14;
  }
}

const WATCH_KINDS: Record<number, WatchKind> = { 2: 'write', 3: 'read', 4: 'access' };

function breakpoint(payload: string, session: EmuSession, state: RspServerState): Answer {
  const m = /^([Zz])([0-9]),([^,;]+),([^,;]+)/.exec(payload);
  if (!m) return E22;
  const type = Number(m[2]);
  if (type > 4) return EMPTY;
  const address = hexNumber(m[3]);
  const kind = hexNumber(m[4]);
  if (address === null || kind === null) return E22;
  const insert = m[1] === 'Z';
  const machine = session.machine;
  if (type <= 1) {
    const n = state.breakpoints.get(address) ?? 0;
    if (insert) {
      state.breakpoints.set(address, n + 1);
      machine.addBreakpoint(address);
      return OK;
    }
    if (n === 0) return E22;
    if (n === 1) {
      state.breakpoints.delete(address);
      machine.removeBreakpoint(address);
    } else state.breakpoints.set(address, n - 1);
    return OK;
  }
  const length = Number(kind);
  const watchKind = WATCH_KINDS[type]!;
  if (length === 0) return E22;
  if (insert) {
    machine.addWatchpoint(address, length, watchKind);
    state.watchpoints.push({ address, length, kind: watchKind });
    return OK;
  }
  const i = state.watchpoints.findIndex((w) => w.address === address && w.length === length && w.kind === watchKind);
  if (i < 0 || !machine.removeWatchpoint(address, length, watchKind)) return E22;
  state.watchpoints.splice(i, 1);
  return OK;
}

/** Removes every breakpoint and watchpoint the gdbstub inserted (QEMU's gdb_breakpoint_remove_all). */
function removeAll(session: EmuSession, state: RspServerState): void {
  for (const a of state.breakpoints.keys()) session.machine.removeBreakpoint(a);
  for (const w of state.watchpoints) session.machine.removeWatchpoint(w.address, w.length, w.kind);
  state.breakpoints.clear();
  state.watchpoints.length = 0;
}

/** The stop reply for a VM that cannot run (shut down, or failed), sent at once instead of running. */
function stuck(session: EmuSession, state: RspServerState): Answer {
  const s = session.state;
  const signal = s === 'internal-error' ? 6 : s === 'shutdown' ? 3 : 5;
  const stop: VmStop = { state: s === 'internal-error' ? 'internal-error' : 'shutdown', signal, rip: session.machine.cpu.rip };
  return reply(stopReply(stop, state.multiprocess));
}

/** `c [ADDR]`, `s [ADDR]`, `C SIG[;ADDR]`, `S SIG[;ADDR]`: run or step (from ADDR when given). */
function resume(payload: string, session: EmuSession, state: RspServerState): Answer {
  const op = payload[0]!.toLowerCase() as 'c' | 's';
  const rest = payload.slice(1);
  const addrText = payload[0] === 'C' || payload[0] === 'S' ? rest.split(';')[1] : rest;
  if (addrText !== undefined && addrText !== '') {
    const address = hexNumber(addrText);
    if (address === null) return E22;
    session.machine.setRegister('rip', address);
  }
  return run(op, session, state);
}

function run(op: 'c' | 's', session: EmuSession, state: RspServerState): Answer {
  if (session.needsReset) return stuck(session, state);
  // Without the ENABLE flag a step runs freely (QEMU's Qqemu.sstep=0).
  const step = op === 's' && (state.sstep & 1) !== 0;
  return { packets: [], after: () => (step ? session.step() : session.cont()) };
}

/** True when a thread id names the one CPU: 1, -1 (all) or 0 (any), with or without a process part (`p1.1`, `p-1.-1`). */
function isOurThread(text: string): boolean {
  const m = /^(?:p(-1|[0-9a-fA-F]+)\.)?(-1|[0-9a-fA-F]+)$/.exec(text);
  const ours = (part: string | undefined): boolean => part === undefined || part === '-1' || Number.parseInt(part, 16) <= 1;
  return m !== null && ours(m[1]) && ours(m[2]);
}

function vPacket(payload: string, session: EmuSession, state: RspServerState): Answer {
  if (payload === 'vCont?') return reply('vCont;c;C;s;S');
  if (payload.startsWith('vCont;')) {
    for (const action of payload.slice(6).split(';')) {
      const [verb, thread] = action.split(':');
      if (thread !== undefined && !isOurThread(thread)) continue;
      const kind = verb?.[0];
      if (kind === 's' || kind === 'S') return run('s', session, state);
      if (kind === 'c' || kind === 'C') return run('c', session, state);
      return E22;
    }
    return E22;
  }
  if (payload.startsWith('vAttach;')) return reply(`T05thread:${threadId(state.multiprocess)};`);
  if (payload.startsWith('vKill')) return { packets: ['OK'], after: () => session.quit('host-gdb-kill') };
  return EMPTY;
}

function query(payload: string, session: EmuSession, state: RspServerState, link: RspLink): Answer {
  const tid = threadId(state.multiprocess);
  if (payload.startsWith('qSupported')) {
    if (payload.slice(11).split(';').includes('multiprocess+')) state.multiprocess = true;
    return reply(SUPPORTED);
  }
  if (payload.startsWith('qXfer:features:read:')) return features(payload.slice(20), link);
  if (payload.startsWith('qRcmd,')) return monitor(payload.slice(6), state);
  if (payload === 'qAttached' || payload.startsWith('qAttached:')) return reply('1');
  if (payload === 'qC') return reply(`QC${tid}`);
  if (payload === 'qfThreadInfo') return reply(`m${tid}`);
  if (payload === 'qsThreadInfo') return reply('l');
  if (payload.startsWith('qThreadExtraInfo,')) {
    if (!isOurThread(payload.slice(17))) return E22;
    return reply(textToHex(`CPU#0 [${session.machine.cpu.halted ? 'halted ' : 'running'}]`));
  }
  if (payload === 'qqemu.sstepbits') return reply('ENABLE=1,NOIRQ=2,NOTIMER=4');
  if (payload === 'qqemu.sstep') return reply(`0x${state.sstep.toString(16)}`);
  if (payload === 'qqemu.PhyMemMode') return reply(state.physicalMemory ? '1' : '0');
  return EMPTY;
}

function setting(payload: string, state: RspServerState): Answer {
  const phy = /^Qqemu\.PhyMemMode:([0-9]+)$/.exec(payload);
  if (phy) {
    state.physicalMemory = Number(phy[1]) !== 0;
    return OK;
  }
  const sstep = /^Qqemu\.sstep=(?:0x)?([0-9a-fA-F]+)$/.exec(payload);
  if (sstep) {
    state.sstep = Number.parseInt(sstep[1]!, 16);
    return OK;
  }
  return EMPTY;
}

/** `qXfer:features:read:ANNEX:OFFSET,LENGTH`: a chunk (`m` more follows, `l` last) of at most 2045 bytes, or E00. */
function features(args: string, link: RspLink): Answer {
  const m = /^([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(args);
  if (!m) return reply('E00');
  const doc = TARGET_ANNEXES.get(m[1]!);
  link.targetXmlRead = true;
  if (!doc) return reply('E00');
  const offset = Number.parseInt(m[2]!, 16);
  const length = Math.min(Number.parseInt(m[3]!, 16), MAX_XFER_CHUNK);
  if (offset > doc.length) return reply('E00');
  const more = length < doc.length - offset;
  const data = doc.subarray(offset, more ? offset + length : doc.length);
  const out = new Uint8Array(data.length + 1);
  out[0] = more ? 0x6d : 0x6c;
  out.set(data, 1);
  return reply(out);
}

/** `qRcmd,HEX`: the monitor's output as `O` packets, about one a line, then `OK`. */
function monitor(hex: string, state: RspServerState): Answer {
  if (hex.length % 2 !== 0) return reply('E01');
  let command: string;
  try {
    command = hexToText(hex);
  } catch {
    return reply('E01');
  }
  let output: string;
  try {
    output = state.monitor.execute(command);
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    output = `Error: ${e.message}\r\n`;
  }
  const packets: string[] = [];
  for (const line of output.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    for (let i = 0; i < line.length; i += MAX_OUTPUT_TEXT) packets.push(`O${textToHex(line.slice(i, i + MAX_OUTPUT_TEXT))}`);
  }
  packets.push('OK');
  return { packets };
}

/** The stop reply for a VM stop: `T05thread:p01.01;` (or `thread:01;`), `watch:`/`rwatch:`/`awatch:` with the inserted address. */
export function stopReply(s: VmStop, multiprocess: boolean): string {
  const kind = s.watch ? { write: 'watch', read: 'rwatch', access: 'awatch' }[s.watch.kind] : null;
  const watch = s.watch && kind ? `${kind}:${s.watch.address.toString(16).padStart(16, '0')};` : '';
  return `T${s.signal.toString(16).padStart(2, '0')}thread:${threadId(multiprocess)};${watch}`;
}

/** The one thread's id as QEMU writes it: `p01.01` once multiprocess is negotiated, else `01`. */
export function threadId(multiprocess: boolean): string {
  return multiprocess ? 'p01.01' : '01';
}
