/**
 * How panes paint text: colours (ANSI SGR, which blessed turns into cell attributes, and which the
 * CLI's renderers already speak) and glyphs, with plain ASCII stand-ins for terminals without UTF-8.
 */
import pc from 'picocolors';
import type { Colors } from '../cli/output.js';

/** The symbols panes draw. */
export interface Glyphs {
  /** Marks a failing level, a denied access, a dangerous verdict. */
  bad: string;
  /** Marks an allowed access or a safe verdict. */
  good: string;
  /** Draws a warning. */
  warn: string;
  /** Separates the steps of an exception chain. */
  arrow: string;
  /** A mapped cell of the address-space strip. */
  full: string;
  /** A cell of the strip with a little mapped. */
  some: string;
  /** An empty cell of the strip. */
  empty: string;
  /** The non-canonical hole in the strip. */
  hole: string;
  /** Marks the selected address in the strip. */
  here: string;
}

/** Glyphs for UTF-8 terminals. */
export const UNICODE_GLYPHS: Readonly<Glyphs> = Object.freeze({ bad: '✗', good: '✓', warn: '⚠', arrow: '→', full: '█', some: '▒', empty: '·', hole: '┊', here: '▲' });

/** Glyphs for everything else. */
export const ASCII_GLYPHS: Readonly<Glyphs> = Object.freeze({ bad: 'X', good: 'ok', warn: '!', arrow: '->', full: '#', some: '+', empty: '.', hole: '|', here: '^' });

/** Colours and glyphs, passed to every pane renderer. */
export interface Paint {
  c: Colors;
  g: Glyphs;
}

/** A paint: colours on or off, UTF-8 glyphs or ASCII. */
export function paint(colors: boolean, unicode: boolean): Paint {
  return { c: pc.createColors(colors), g: unicode ? UNICODE_GLYPHS : ASCII_GLYPHS };
}

/** True when the environment's locale says UTF-8 (LC_ALL, then LC_CTYPE, then LANG, as C libraries decide). */
export function utf8Locale(env: Record<string, string | undefined>): boolean {
  const locale = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(locale);
}
