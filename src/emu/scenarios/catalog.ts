/**
 * The list of scenarios, in the order of issue 4, and the lookup by name with a suggestion for a
 * mistyped one.
 */
import { ScenarioError } from './errors.js';
import { fiveLevel } from './fiveLevel.js';
import { good } from './good.js';
import { hugePageMisaligned } from './hugePageMisaligned.js';
import { idtUnmapped } from './idtUnmapped.js';
import { kernelWrongPhysicalBase } from './kernelWrongPhysicalBase.js';
import { nxEverywhere } from './nxEverywhere.js';
import { nxWithoutNxe } from './nxWithoutNxe.js';
import { pdIndexTypo } from './pdIndexTypo.js';
import type { Scenario } from './scenario.js';
import { stackUnmapped } from './stackUnmapped.js';
import { uefiTrampolineUnmapped } from './uefiTrampolineUnmapped.js';
import { unshiftedBitfield } from './unshiftedBitfield.js';
import { userTouchesSupervisor } from './userTouchesSupervisor.js';
import { writeToReadonlyWp } from './writeToReadonlyWp.js';

/** Every scenario, `good` first, in the order of issue 4, then the ones added since. */
export const SCENARIOS: readonly Scenario[] = Object.freeze([
  good,
  pdIndexTypo,
  unshiftedBitfield,
  stackUnmapped,
  nxEverywhere,
  uefiTrampolineUnmapped,
  idtUnmapped,
  kernelWrongPhysicalBase,
  fiveLevel,
  hugePageMisaligned,
  userTouchesSupervisor,
  writeToReadonlyWp,
  nxWithoutNxe,
]);

/** Edit distance between two names (for "did you mean"). */
function distanceBetween(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The scenario a mistyped `wanted` most likely means: the only one containing it, else the nearest by edit distance if near enough. */
function closest(wanted: string): Scenario | null {
  const containing = wanted.length >= 3 ? SCENARIOS.filter((s) => s.name.includes(wanted)) : [];
  if (containing.length === 1) return containing[0]!;
  let best: Scenario | null = null;
  let bestDistance = Infinity;
  for (const s of SCENARIOS) {
    const d = distanceBetween(wanted, s.name);
    if (d < bestDistance) [best, bestDistance] = [s, d];
  }
  return best && bestDistance <= Math.max(2, Math.floor(best.name.length / 4)) ? best : null;
}

/** The scenario named `name`; throws ScenarioError (E_SCENARIO) listing the valid names, with the closest one for a typo. */
export function findScenario(name: string): Scenario {
  const found = SCENARIOS.find((s) => s.name === name);
  if (found) return found;
  const guess = closest(name.trim().toLowerCase());
  const hint = guess ? `did you mean "${guess.name}"? ` : '';
  throw new ScenarioError('E_SCENARIO', `unknown scenario "${name}": ${hint}valid scenarios are ${SCENARIOS.map((s) => s.name).join(', ')}`);
}
