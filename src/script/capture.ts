/**
 * Text from renderers that write to an Output (the watch's events, hints, post-mortems), captured
 * as lines in the executor's colours, so a script shows exactly what the CLI prints.
 */
import { Output, type Colors } from '../cli/output.js';

/** What `render` wrote: stdout lines as text, stderr lines (without their `warning: ` tag) as warnings. */
export function captureOutput(colors: Colors, render: (out: Output) => void): { text: string[]; warnings: string[] } {
  let stdout = '';
  let stderr = '';
  const env = colors.isColorSupported ? { FORCE_COLOR: '1' } : { NO_COLOR: '1' };
  const out = new Output({ stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env }, false);
  render(out);
  const lines = (s: string): string[] => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));
  // eslint-disable-next-line no-control-regex
  return { text: lines(stdout), warnings: lines(stderr).map((w) => w.replace(/^(\x1b\[[0-9;]*m)*(warning|note): /, '').replace(/\x1b\[[0-9;]*m$/, '')) };
}
