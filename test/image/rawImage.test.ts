import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeRawImage } from '../../src/image/rawImage.js';
import { SparseMemory } from '../../src/image/sparseMemory.js';

const dir = mkdtempSync(join(tmpdir(), 'pagewalk-raw-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeRawImage', () => {
  it('writes every byte at its physical address and sizes the file to the RAM', async () => {
    const mem = new SparseMemory(0x5000);
    mem.write64(0x1ff8, 0x1122334455667788n);
    mem.write(0x4ffe, new Uint8Array([0xee, 0xff]));
    const path = join(dir, 'small.img');
    await writeRawImage(mem, path);
    const b = readFileSync(path);
    expect(b.length).toBe(0x5000);
    expect(b.subarray(0x1ff8, 0x2000).toString('hex')).toBe('8877665544332211');
    expect(b.subarray(0x4ffe).toString('hex')).toBe('eeff');
    expect(b.subarray(0, 0x1ff8).every((x) => x === 0)).toBe(true);
  });

  it('cuts the last frame at a RAM size that is not a multiple of 4 KiB', async () => {
    const mem = new SparseMemory(0x1800);
    mem.write32(0x17fc, 0xcafef00d);
    const path = join(dir, 'odd.img');
    await writeRawImage(mem, path);
    const b = readFileSync(path);
    expect(b.length).toBe(0x1800);
    expect(b.readUInt32LE(0x17fc)).toBe(0xcafef00d);
  });

  it('replaces a longer file', async () => {
    const path = join(dir, 'replace.img');
    writeFileSync(path, Buffer.alloc(0x9000, 0x77));
    await writeRawImage(new SparseMemory(0x2000), path);
    expect(statSync(path).size).toBe(0x2000);
    expect(readFileSync(path).every((x) => x === 0)).toBe(true);
  });
});
