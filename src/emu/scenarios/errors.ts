/**
 * The error a scenario lookup or build raises, with a stable code the CLI turns into one line.
 */

/** Stable codes of scenario errors. */
export type ScenarioErrorCode =
  /** No scenario has the name asked for (the message lists the valid names and the closest one). */
  'E_SCENARIO';

/** A scenario error; `code` is stable. */
export class ScenarioError extends Error {
  constructor(
    readonly code: ScenarioErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ScenarioError';
  }
}
