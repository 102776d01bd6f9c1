/**
 * The scenarios: reproductions of the bugs kernel developers hit when they load their own page
 * tables, each a machine that boots like a loader's hand-over and runs a small kernel. Look one up
 * by name with `findScenario`; run one with `runScenario`.
 */
export { SCENARIOS, findScenario } from './catalog.js';
export { ScenarioError, type ScenarioErrorCode } from './errors.js';
export { LAYOUT } from './layout.js';
export { exceptionLines, firstException, isExceptionLine, parseInterruptLine, runScenario, type FirstException, type ScenarioRun } from './observe.js';
export type { Scenario, ScenarioBuild, ScenarioOutcome } from './scenario.js';
