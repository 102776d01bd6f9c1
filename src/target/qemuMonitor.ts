/**
 * QEMU's human monitor as the live targets use it, reached either through QMP
 * (`human-monitor-command`) or through the gdbstub (`qRcmd`, "monitor" in GDB), and the questions
 * pagewalk asks it: `info registers` (what the gdbstub lacks: GDTR, IDTR, TR, segment caches),
 * `info mtree -f` (the RAM layout), and QOM properties of the CPU (MAXPHYADDR as `phys-bits`, 1 GiB
 * pages as `pdpe1gb`) and of memory backends (`mem-path`, `share`).
 */
import type { CpuFeatures } from '../paging/mode.js';
import type { QmpClient } from '../qmp/client.js';
import { HmpError } from '../qmp/errors.js';
import { parseInfoRegisters, type InfoRegisters } from '../qmp/hmp.js';
import { checkHmpOutput, hmpLines } from '../qmp/hmpText.js';
import { describeEndpoint } from '../qmp/transport.js';
import type { RspClient } from '../rsp/client.js';
import { RspError } from '../rsp/errors.js';
import { parseMtreeFlat, systemMemory, type FlatRange } from './mtree.js';

/** A way to run human-monitor commands on one QEMU. */
export interface QemuMonitor {
  /** Who answers, for messages: "QMP at /tmp/qmp.sock", "the monitor of the gdbstub at 127.0.0.1:1234". */
  readonly label: string;
  /** Runs a command line; resolves with its output (LF line ends). Throws HmpError when the monitor refuses it. */
  hmp(commandLine: string): Promise<string>;
  /** The QOM path of the first CPU when this channel can ask for it directly (QMP `query-cpus-fast`), else null. */
  cpuPath(): Promise<string | null>;
}

/** The monitor behind a QMP connection. */
export function qmpMonitor(client: QmpClient): QemuMonitor {
  return {
    label: `QMP at ${describeEndpoint(client.endpoint)}`,
    hmp: (line) => client.hmp(line),
    async cpuPath() {
      const cpus = await client.execute<unknown>('query-cpus-fast');
      const first = Array.isArray(cpus) ? (cpus[0] as { 'qom-path'?: unknown } | undefined) : undefined;
      return typeof first?.['qom-path'] === 'string' ? first['qom-path'] : null;
    },
  };
}

/** The monitor behind a gdbstub (`qRcmd`): HmpError E_HMP_UNKNOWN_COMMAND when the stub has none. */
export function rspMonitor(client: RspClient): QemuMonitor {
  return {
    label: `the monitor of the gdbstub at ${client.endpoint}`,
    async hmp(line) {
      let text: string;
      try {
        text = (await client.monitor(line)).replace(/\r\n/g, '\n');
      } catch (e) {
        if (e instanceof RspError && e.code === 'E_UNSUPPORTED') {
          throw new HmpError('E_HMP_UNKNOWN_COMMAND', `the gdbstub at ${client.endpoint} has no monitor (qRcmd): it is not QEMU`);
        }
        throw e;
      }
      checkHmpOutput(text, line);
      return text;
    },
    cpuPath: async () => null,
  };
}

/** `info registers` of the monitor's current CPU (the first one unless changed with `cpu N`). Throws HmpError. */
export async function infoRegisters(m: QemuMonitor): Promise<InfoRegisters> {
  return parseInfoRegisters(await m.hmp('info registers'));
}

/** The ranges the CPU sees, from `info mtree -f` (see `mtree.ts`). Throws HmpError. */
export async function memoryMap(m: QemuMonitor): Promise<FlatRange[]> {
  return systemMemory(parseMtreeFlat(await m.hmp('info mtree -f')));
}

/**
 * A QOM property through HMP `qom-get PATH PROPERTY` (QEMU prints it as JSON), or undefined when
 * QEMU answers `Error: ...` (no such object or property) or has no `qom-get` command.
 */
export async function qomGet(m: QemuMonitor, path: string, property: string): Promise<unknown> {
  let text: string;
  try {
    text = (await m.hmp(`qom-get ${path} ${property}`)).trim();
  } catch (e) {
    if (e instanceof HmpError) return undefined;
    throw e;
  }
  if (text.startsWith('Error:')) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Where machines without `-device ...,id=` put the CPUs they create: the first is usually device[0]. */
const FIRST_UNATTACHED = '/machine/unattached/device[0]';

/** The first CPU's QOM path: from the channel when it can tell, else device[0] when that is a CPU; null otherwise. */
export async function firstCpuPath(m: QemuMonitor): Promise<string | null> {
  const direct = await m.cpuPath();
  if (direct) return direct;
  const type = await qomGet(m, FIRST_UNATTACHED, 'type');
  return typeof type === 'string' && type.endsWith('-cpu') ? FIRST_UNATTACHED : null;
}

/**
 * What QEMU says about its CPU model: MAXPHYADDR (`phys-bits`) and 1 GiB page support (`pdpe1gb`).
 * A property QEMU does not answer is left out.
 */
export async function cpuFeatures(m: QemuMonitor): Promise<CpuFeatures> {
  const path = await firstCpuPath(m);
  if (!path) return {};
  const [bits, gb] = await Promise.all([qomGet(m, path, 'phys-bits'), qomGet(m, path, 'pdpe1gb')]);
  const out: CpuFeatures = {};
  if (typeof bits === 'number' && Number.isInteger(bits) && bits >= 32 && bits <= 52) out.maxPhyAddr = bits;
  if (typeof gb === 'boolean') out.gbPages = gb;
  return out;
}

/** The ids of the memory backends (`info memdev`: `memory backend: ID` lines). Throws HmpError. */
export async function memoryBackends(m: QemuMonitor): Promise<string[]> {
  const ids: string[] = [];
  for (const line of hmpLines(await m.hmp('info memdev'))) {
    const id = /^memory backend: (.+)$/.exec(line.text);
    if (id) ids.push(id[1]!);
  }
  return ids;
}
