/**
 * Two connected in-process streams, like the two ends of a socket: what one end writes the other
 * reads, ending one ends the other's reading, and destroying one closes both. pagewalk's clients
 * in the proxy's own process talk RSP over such a pair.
 */
import { Duplex } from 'node:stream';

class PipeEnd extends Duplex {
  peer: PipeEnd | null = null;

  override _read(): void {
    // Data is pushed by the peer's writes.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer && !peer.destroyed) peer.push(Buffer.from(chunk));
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.peer && !this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = null;
    if (peer) {
      peer.peer = null;
      if (!peer.destroyed) {
        peer.push(null);
        peer.destroy();
      }
    }
    callback(error);
  }
}

/** Two connected ends. */
export function duplexPair(): [Duplex, Duplex] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
