/**
 * What the proxy reads from a request alone: the answer it waits for, which packets of a pagewalk
 * client it answers itself, and QEMU's PhyMemMode as each side must see it.
 */
import { describe, expect, it } from 'vitest';
import { expectFor, isDetach, phyMemModeSet, refusedForPagewalk, writesGuestState } from '../../src/proxy/packets.js';
import { PhyMemModes } from '../../src/proxy/phyMemMode.js';

describe('expectFor', () => {
  it.each([
    ['c', 'resume'],
    ['C05', 'resume'],
    ['s', 'resume'],
    ['S05', 'resume'],
    ['vCont;c:p1.-1', 'resume'],
    ['vCont;s:p1.1', 'resume'],
    ['vCont?', 'reply'],
    ['k', 'resume'],
    ['bc', 'resume'],
    ['?', 'stop'],
    ['qRcmd,696e666f', 'monitor'],
    ['qSupported:multiprocess+', 'reply'],
    ['Fffffffff', 'none'],
    ['m1000,8', 'reply'],
    ['g', 'reply'],
    ['D;1', 'reply'],
    ['Z0,1000,1', 'reply'],
    ['vAttach;1', 'resume'],
    ['vMustReplyEmpty', 'reply'],
  ] as const)('%s waits for %s', (payload, kind) => {
    expect(expectFor(payload)).toBe(kind);
  });
});

describe('what pagewalk may not send', () => {
  it('refuses what changes GDB\'s session and lets reads, writes, breakpoints and runs through', () => {
    for (const p of ['k', 'vKill;1', 'vAttach;1', 'vRun;', 'R00', '!', 'Hg0', 'Hc-1', 'Qqemu.sstep=0', 'QNonStop:1', 'QThreadEvents:1', 'QPassSignals:e', 'QTinit']) {
      expect(refusedForPagewalk(p), p).not.toBeNull();
    }
    for (const p of ['m1000,8', 'M1000,1:00', 'g', 'p10', 'P1d=0000110000000000', 'Z1,ffffffff80101007,1', 'z1,ffffffff80101007,1', 'vCont;c', 's', 'qRcmd,00', 'qqemu.sstep', 'qXfer:features:read:target.xml:0,ffb', 'qqemu.PhyMemMode', 'Qqemu.PhyMemMode:1']) {
      expect(refusedForPagewalk(p), p).toBeNull();
    }
  });

  it('knows detaching, PhyMemMode settings and writes', () => {
    expect([isDetach('D'), isDetach('D;1'), isDetach('Dx')]).toEqual([true, true, false]);
    expect([phyMemModeSet('Qqemu.PhyMemMode:1'), phyMemModeSet('Qqemu.PhyMemMode:0'), phyMemModeSet('Qqemu.PhyMemMode:2'), phyMemModeSet('Qqemu.PhyMemMode:x')]).toEqual([true, false, true, null]);
    expect(['M0,1:00', 'X0,0:', 'P10=00', 'G00', 'm0,1', 'g'].map(writesGuestState)).toEqual([true, true, true, true, false, false]);
  });
});

describe('PhyMemModes', () => {
  it('switches to pagewalk\'s mode and back to GDB\'s only when it differs', () => {
    const m = new PhyMemModes();
    expect(m.ready).toBe(false);
    expect(m.switchFor(true)).toBeNull();
    m.queried('0');
    expect(m.ready).toBe(true);
    expect(m.switchFor(null)).toBeNull();
    expect(m.switchFor(true)).toBe('Qqemu.PhyMemMode:1');
    expect(m.switchFor(true)).toBeNull();
    expect(m.switchFor(false)).toBe('Qqemu.PhyMemMode:0');
    expect(m.switchFor(true)).toBe('Qqemu.PhyMemMode:1');
    expect(m.switchFor(null)).toBe('Qqemu.PhyMemMode:0');
    expect([m.gdb, m.now]).toEqual([false, false]);
  });

  it('follows GDB\'s own settings, and forgets the modes when QEMU does not simply accept one', () => {
    const m = new PhyMemModes();
    m.queried('0');
    m.gdbSet(true, 'OK');
    expect([m.gdb, m.now]).toEqual([true, true]);
    expect(m.switchFor(null)).toBeNull();
    expect(m.switchFor(false)).toBe('Qqemu.PhyMemMode:0');
    m.gdbSet(null, 'E22');
    expect(m.unknown).toBe(true);
    expect(m.switchFor(true)).toBeNull();
    m.queried('1');
    expect(m.unknown).toBe(false);
    expect(m.switchFor(false)).toBe('Qqemu.PhyMemMode:0');
    m.switchFailed();
    expect(m.now).toBeNull();
  });

  it('does nothing on a stub without PhyMemMode', () => {
    const m = new PhyMemModes();
    m.queried('');
    expect(m.supported).toBe(false);
    expect(m.ready).toBe(true);
    expect(m.switchFor(true)).toBeNull();
  });
});
