/**
 * The few QOM properties the emulator answers `qom-get` for (QMP and HMP alike), in QEMU's shapes:
 * the CPU at `/machine/unattached/device[0]` (where QEMU puts a `-cpu max` CPU), typed
 * `max-x86_64-cpu`, with MAXPHYADDR as `phys-bits` and its paging features as booleans.
 */
import type { CpuFeatures } from './features.js';

/** The QOM path of the emulated CPU. */
export const CPU_QOM_PATH = '/machine/unattached/device[0]';

/** The QOM type of the emulated CPU. */
export const CPU_QOM_TYPE = 'max-x86_64-cpu';

/** A property's value, or QEMU's error class and description. */
export type QomResult = { ok: true; value: string | number | boolean } | { ok: false; errorClass: 'DeviceNotFound' | 'GenericError'; desc: string };

/** Property `property` of the object at `path`, for a CPU with `features`. */
export function qomGet(features: CpuFeatures, path: string, property: string): QomResult {
  if (path !== CPU_QOM_PATH) return { ok: false, errorClass: 'DeviceNotFound', desc: `Device '${path}' not found` };
  const props: Record<string, string | number | boolean> = {
    type: CPU_QOM_TYPE,
    'phys-bits': features.maxPhyAddr,
    'host-phys-bits': false,
    pdpe1gb: features.pdpe1gb,
    la57: features.la57,
    nx: features.nx,
    smep: features.smep,
    smap: features.smap,
    pku: features.pku,
    pks: features.pks,
    pcid: features.pcid,
    pge: features.pge,
    lm: true,
    'cpu-index': 0,
  };
  const value = props[property];
  if (value === undefined) return { ok: false, errorClass: 'GenericError', desc: `Property '${CPU_QOM_TYPE}.${property}' not found` };
  return { ok: true, value };
}
