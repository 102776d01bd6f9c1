/**
 * Builds dist/ once before the tests (as `npm ci` does through `prepare`), so that the tests that
 * spawn bin/pagewalk or import the built package run the code under test, and parallel test files
 * never rebuild it under each other's feet.
 */
import { buildDist } from './helpers/cli.js';

export default function setup(): void {
  buildDist();
  process.env.PAGEWALK_DIST_BUILT = '1';
}
