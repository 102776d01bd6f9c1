/**
 * Writing a raw physical memory image: file offset = physical address, size = the RAM size, the
 * format `pmemsave` writes and `--dump` reads. Only the written frames are stored; the rest is
 * left as holes, so a 4 GiB image of a few tables takes a few KiB on disk.
 */
import { open } from 'node:fs/promises';
import type { SparseMemory } from './sparseMemory.js';

/** Writes `mem` to `path` as a raw image of `mem.size` bytes (replacing the file). */
export async function writeRawImage(mem: SparseMemory, path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const [pa, bytes] of mem.writtenFrames()) {
      const n = Math.min(bytes.length, mem.size - pa);
      if (n > 0) await fh.write(bytes, 0, n, pa);
    }
    await fh.truncate(mem.size);
  } finally {
    await fh.close();
  }
}
