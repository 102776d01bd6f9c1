/**
 * Both ends of the proxy's connections at the byte level, over in-process pipes: the stub side
 * (acks, `-`, no-ack mode) and the client side toward QEMU (answers matched to requests, output
 * before the answer, stops nobody asked for, a packet QEMU lost sent again, run packets held while
 * anything is in flight), with QEMU's bytes cut at every offset.
 */
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../../src/proxy/duplexPair.js';
import { StubLink } from '../../src/proxy/stubLink.js';
import { UpstreamLink } from '../../src/proxy/upstream.js';
import { encodePacket } from '../../src/rsp/framing.js';

const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
/** `$payload#cs`. */
const frame = (payload: string) => Buffer.from(encodePacket(payload)).toString('latin1');
const tick = () => new Promise((r) => setImmediate(r));

function collect(stream: Duplex): { bytes: () => string } {
  let got = '';
  stream.on('data', (d: Buffer) => (got += d.toString('latin1')));
  return { bytes: () => got };
}

describe('StubLink', () => {
  it('acknowledges packets, answers damage with -, resends its last packet on -, and stops acking in no-ack mode', async () => {
    const [mine, theirs] = duplexPair();
    const link = new StubLink(mine, 'GDB');
    const peer = collect(theirs);
    const packets: string[] = [];
    const events: string[] = [];
    link.on('packet', (p) => packets.push(text(p)));
    link.on('interrupt', () => events.push('^C'));
    link.on('damaged', (m) => events.push(m.slice(0, 20)));
    theirs.write(Buffer.from('+$g#67$m0,1#00\x03', 'latin1'));
    await tick();
    expect(packets).toEqual(['g']);
    expect(events).toEqual(["GDB sent a damaged p", '^C']);
    link.send(Buffer.from('OK'));
    theirs.write('-');
    await tick();
    expect(peer.bytes()).toBe('+-$OK#9a$OK#9a');
    link.endAcks();
    theirs.write(encodePacket('g'));
    await tick();
    expect(peer.bytes()).toBe('+-$OK#9a$OK#9a');
    expect(packets).toEqual(['g', 'g']);
  });
});

/** QEMU's side of a short conversation: acks, answers, output, a stop nobody asked for. */
const QEMU_BYTES = `+${frame('T05thread:p01.01;')}+${frame('O6869')}${frame('OK')}+${frame('1122')}${frame('T02thread:01;')}`;

describe('UpstreamLink', () => {
  it('hands each answer to the request it belongs to, whatever the cuts in QEMU\'s bytes', async () => {
    for (let cut = 0; cut <= QEMU_BYTES.length; cut++) {
      const [mine, theirs] = duplexPair();
      const link = new UpstreamLink<string>(mine, 'QEMU');
      const seen: string[] = [];
      link.on('answer', (o, p) => seen.push(`${o.owner}:${text(p)}`));
      link.on('progress', (o, p) => seen.push(`${o.owner}~${text(p)}`));
      link.on('unsolicited', (p, stop) => seen.push(`nobody:${text(p)}:${stop?.kind}`));
      link.send('a', '?', 'stop');
      link.send('b', 'qRcmd,6869', 'monitor');
      link.send('c', 'g', 'reply');
      theirs.write(Buffer.from(QEMU_BYTES.slice(0, cut), 'latin1'));
      await tick();
      theirs.write(Buffer.from(QEMU_BYTES.slice(cut), 'latin1'));
      await tick();
      expect(seen, `cut at ${cut}`).toEqual(['a:T05thread:p01.01;', 'b~O6869', 'b:OK', 'c:1122', 'nobody:T02thread:01;:stopped']);
    }
  });

  it('acknowledges each packet from QEMU at once, and sends again a packet QEMU took for Ctrl-C', async () => {
    const [mine, theirs] = duplexPair();
    const link = new UpstreamLink<string>(mine, 'QEMU');
    const peer = collect(theirs);
    const seen: string[] = [];
    link.on('answer', (o, p) => seen.push(`${o.owner}:${text(p)}`));
    link.on('unsolicited', (p) => seen.push(`nobody:${text(p)}`));
    link.on('resent', (o) => seen.push(`resent ${o.payload}`));
    link.send('x', '?', 'stop');
    theirs.write(Buffer.from(`+${frame('T05thread:01;')}`, 'latin1'));
    await tick();
    // The guest was resumed behind our back: QEMU answers `g` with T02 and no '+'.
    link.send('y', 'g', 'reply');
    theirs.write(Buffer.from(frame('T02thread:01;'), 'latin1'));
    await tick();
    theirs.write(Buffer.from(`+${frame('1122')}`, 'latin1'));
    await tick();
    expect(seen).toEqual(['x:T05thread:01;', 'resent g', 'nobody:T02thread:01;', 'y:1122']);
    expect(peer.bytes()).toBe(`${frame('?')}+${frame('g')}+${frame('g')}+`);
  });

  it('takes the T02 of connecting for a stop, not for a lost packet', async () => {
    const [mine, theirs] = duplexPair();
    const link = new UpstreamLink<string>(mine, 'QEMU');
    const seen: string[] = [];
    link.on('unsolicited', (p) => seen.push(`nobody:${text(p)}`));
    link.on('resent', (o) => seen.push(`resent ${o.payload}`));
    link.on('answer', (o, p) => seen.push(`${o.owner}:${text(p)}`));
    link.send('x', 'qSupported', 'reply');
    theirs.write(Buffer.from(`${frame('T02thread:01;')}+${frame('PacketSize=1000')}`, 'latin1'));
    await tick();
    expect(seen).toEqual(['nobody:T02thread:01;', 'x:PacketSize=1000']);
    expect(link.stoppedOnConnect).toBe(true);
  });

  it('holds a run packet until every earlier answer is in (and acknowledged), and Ctrl-C behind it', async () => {
    const [mine, theirs] = duplexPair();
    const link = new UpstreamLink<string>(mine, 'QEMU');
    const peer = collect(theirs);
    link.send('pw', 'm0,1', 'reply');
    link.send('gdb', 'vCont;c', 'resume');
    link.interrupt();
    await tick();
    expect(peer.bytes()).toBe(frame('m0,1'));
    expect(link.runningFor?.payload).toBe('vCont;c');
    theirs.write(Buffer.from(`+${frame('00')}`, 'latin1'));
    await tick();
    expect(peer.bytes()).toBe(`${frame('m0,1')}+${frame('vCont;c')}\x03`);
  });
});
