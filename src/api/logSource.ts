/**
 * Where `explainLog()` reads a QEMU log from: a file (streamed), a text, or chunks of bytes.
 */
import { createReadStream } from 'node:fs';
import { ApiError } from './errors.js';
import type { LogSource } from './requests.js';

/** The chunks of a log source, and its name for messages; E_BAD_INPUT for anything else. */
export function logChunks(source: LogSource): { chunks: AsyncIterable<string | Uint8Array>; name: string } {
  if (typeof source !== 'object' || source === null) throw new ApiError('E_BAD_INPUT', 'explainLog: pass { path }, { text } or { chunks }');
  if ('text' in source) {
    if (typeof source.text !== 'string') throw new ApiError('E_BAD_INPUT', 'explainLog: text must be a string');
    const text = source.text;
    return {
      chunks: (async function* () {
        yield text;
      })(),
      name: 'the log',
    };
  }
  if ('path' in source) {
    if (typeof source.path !== 'string') throw new ApiError('E_BAD_INPUT', 'explainLog: path must be a string');
    return { chunks: createReadStream(source.path), name: source.path };
  }
  if ('chunks' in source && source.chunks && typeof (source.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return { chunks: source.chunks, name: 'the log' };
  }
  throw new ApiError('E_BAD_INPUT', 'explainLog: pass { path }, { text } or { chunks }');
}
