/**
 * The terminal type blessed is told to drive. blessed 0.1.81 reads only the legacy terminfo format
 * (magic 0432); ncurses 6.1 and later (Debian 12 among them) compile entries with 32-bit numbers
 * (magic 01036), which blessed cannot parse. For such a $TERM the TUI names a terminal blessed ships
 * its own description of (xterm-256color, xterm), so blessed falls back to that one instead of
 * misreading the system's; a legacy entry, or a $TERMINFO that holds one, is used as it is.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The terminfo format blessed reads (the legacy one). */
const LEGACY_MAGIC = 0o432;

/** Where ncurses looks for `term`'s compiled entry, in its order (after $TERMINFO and $TERMINFO_DIRS). */
export function terminfoCandidates(term: string, env: Record<string, string | undefined>): string[] {
  const dirs = [env.TERMINFO ?? '', ...(env.TERMINFO_DIRS ?? '').split(':'), join(env.HOME ?? homedir(), '.terminfo'), '/etc/terminfo', '/lib/terminfo', '/usr/share/terminfo', '/usr/lib/terminfo'].filter(Boolean);
  const first = term[0] ?? 'x';
  return dirs.flatMap((d) => [join(d, first, term), join(d, first.charCodeAt(0).toString(16), term)]);
}

/** The magic number of `term`'s first compiled entry found, or null when there is none. */
export function terminfoMagic(term: string, env: Record<string, string | undefined>): number | null {
  for (const file of terminfoCandidates(term, env)) {
    try {
      const b = readFileSync(file);
      if (b.length >= 2) return b[0]! | (b[1]! << 8);
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The terminal name to give blessed for `env.TERM`: the name itself when blessed can read its entry
 * (or none exists: blessed then uses its own xterm), else the nearest terminal blessed ships.
 */
export function terminalName(env: Record<string, string | undefined>): string {
  const term = (env.TERM ?? '').trim() || 'xterm';
  if (term === 'dumb') return 'xterm';
  const magic = terminfoMagic(term, env);
  if (magic === null || magic === LEGACY_MAGIC) return term;
  return /256col/.test(term) ? 'xterm-256color' : 'xterm';
}
