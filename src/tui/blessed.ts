/**
 * blessed, imported the one way that works under plain Node: it is CommonJS, so its named exports
 * exist for TypeScript but not for Node's ESM loader. Everything in src/tui takes it from here.
 */
import blessedModule from 'blessed';

/** The blessed module object. */
export const blessed = blessedModule;

export type { Widgets } from 'blessed';
