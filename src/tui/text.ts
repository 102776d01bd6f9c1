/**
 * Plain-text helpers for panes: word wrapping to a pane's width with a hanging indent, and
 * shortening a line that must stay on one row.
 */

/**
 * Wraps `text` (no colour codes) into lines of at most `width` characters: the first line starts
 * with `first`, the others with `rest`. A word longer than a line is cut.
 */
export function wrapWords(text: string, width: number, first = '', rest = first): string[] {
  const out: string[] = [];
  let prefix = first;
  let line = '';
  const flush = (): void => {
    out.push(prefix + line);
    prefix = rest;
    line = '';
  };
  for (let word of text.split(/\s+/).filter(Boolean)) {
    for (;;) {
      const room = Math.max(8, width - prefix.length);
      if ((line ? line.length + 1 : 0) + word.length <= room) {
        line = line ? `${line} ${word}` : word;
        break;
      }
      if (line) {
        flush();
        continue;
      }
      // A word longer than a whole line: cut it.
      line = word.slice(0, room);
      word = word.slice(room);
      flush();
      if (!word) break;
    }
  }
  if (line || out.length === 0) flush();
  return out;
}

/** `text` cut to `width` characters, with an ellipsis when it was longer (no colour codes). */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  if (width <= 1) return text.slice(0, Math.max(0, width));
  return text.slice(0, width - 1) + '…';
}
