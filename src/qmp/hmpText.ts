/**
 * What every human-monitor parser shares: numbered lines, QEMU's two ways of refusing a command
 * line (`unknown command: 'x'` and `... Try "help x" for more information`), and the parse error
 * that names the line it could not read.
 */
import { HmpError } from './errors.js';

/** One line of monitor output with its 1-based number. */
export interface HmpLine {
  readonly no: number;
  readonly text: string;
}

/** The lines of `text` (CRLF or LF), numbered from 1, without the empty tail after the last line end. */
export function hmpLines(text: string): HmpLine[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines.map((t, i) => ({ no: i + 1, text: t }));
}

/**
 * Throws HmpError when the output says the monitor refused the command line: E_HMP_UNKNOWN_COMMAND
 * for `unknown command: 'x'`, E_HMP_USAGE for an argument complaint ending in `Try "help x" ...`.
 */
export function checkHmpOutput(text: string, command?: string): void {
  const t = text.replace(/\r\n/g, '\n');
  const unknown = /^unknown command: '([^']*)'\n?$/.exec(t);
  if (unknown) {
    throw new HmpError('E_HMP_UNKNOWN_COMMAND', `the QEMU monitor has no command "${unknown[1]}"${command ? ` (in "${command}")` : ''}`);
  }
  const usage = /^([\s\S]*?)\nTry "help ([^"]+)" for more information\n?$/.exec(t);
  if (usage) {
    const why = usage[1]!.replace(/\n/g, '; ');
    throw new HmpError('E_HMP_USAGE', `the QEMU monitor rejected ${command ? `"${command}"` : `its "${usage[2]}" command`}: ${why}`);
  }
}

/** The parse error for `line`: what was expected there, with the line number and its text. */
export function unexpectedLine(what: string, line: HmpLine): HmpError {
  const shown = line.text.length > 100 ? `${line.text.slice(0, 100)}...` : line.text;
  return new HmpError('E_HMP_PARSE', `${what}: line ${line.no} is ${JSON.stringify(shown)}`, line.no);
}

/** A hex number without `0x` as a bigint (the caller's regex has checked the digits). */
export function hexBig(digits: string): bigint {
  return BigInt(`0x${digits}`);
}

/** A hex number without `0x` as a number (at most 8 digits, checked by the caller's regex). */
export function hexNum(digits: string): number {
  return Number.parseInt(digits, 16);
}
