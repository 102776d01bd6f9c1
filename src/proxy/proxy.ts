/**
 * `pagewalk proxy`: GDB and pagewalk share one QEMU gdbstub. GDB connects to the proxy, which passes
 * every packet of GDB's to QEMU and every answer back, unchanged and in order; pagewalk's clients
 * (in process, or other processes on the control socket) speak RSP to the proxy too, and their
 * requests go to QEMU only while the guest is stopped and GDB waits for nothing. While GDB has a
 * request in flight or the guest runs, they queue. GDB always goes first: a packet of GDB's that
 * arrives while a pagewalk client runs the guest stops that run (Ctrl-C) and then goes out.
 *
 * GDB sees a faithful stub: QEMU's answers, stops nobody asked for (while GDB waits for nothing),
 * console output, acks, and no-ack mode when QEMU offers it. QEMU's PhyMemMode is virtual: each
 * client sees its own ({@link PhyMemModes}). Packets that would change GDB's session (`H`, `D`,
 * `k`, `QNonStop`, `Qqemu.sstep`, `?`, which also clears QEMU's breakpoints) are answered by the
 * proxy when a pagewalk client sends them.
 *
 * The proxy holds QEMU's gdbstub only while someone uses it, each hold being one connection with
 * QEMU's own rules (connecting stops a running guest; closing leaves it as it is):
 * - At start it connects once, to fail at once on a wrong address and to learn what QEMU offers,
 *   then lets go (resuming the guest with `D` if its connecting stopped it).
 * - A GDB that connects gets a new connection: QEMU stops the guest and says so (T02), as it would
 *   without the proxy. When that GDB leaves, the guest stays as GDB left it (stopped, or running
 *   after `detach`), and the connection is closed unless pagewalk's clients still use it.
 * - A request of a pagewalk client while nobody holds QEMU opens a connection (stopping a running
 *   guest, as `pagewalk walk --gdb` would); when the last pagewalk client leaves and no GDB came,
 *   the guest is resumed if that connecting stopped it.
 * A connection GDB detached from (`D`: QEMU lets the guest run and forgets the attachment) is of no
 * use to anyone and is closed as soon as GDB leaves.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { SingleClientListener, addressLabel } from '../net/singleClient.js';
import { latin1, type StopReply } from '../rsp/codec.js';
import { endpointLabel, openSocket, parseEndpoint, type RspEndpoint } from '../rsp/endpoint.js';
import { RspError } from '../rsp/errors.js';
import { payloadBytes } from '../rsp/framing.js';
import { systemTimers } from '../rsp/timers.js';
import { duplexPair } from './duplexPair.js';
import { ProxyError } from './errors.js';
import { listening, parseListenAddress, type ListenAddress } from './listen.js';
import { expectFor, isDetach, isPhyMemModeQuery, isPhyMemModeSet, phyMemModeSet, refusedForPagewalk, writesGuestState } from './packets.js';
import { PhyMemModes } from './phyMemMode.js';
import { GdbSession, PagewalkSession, type PagewalkRequest } from './sessions.js';
import { StubLink } from './stubLink.js';
import type { Party, TrafficEntry } from './traffic.js';
import { UpstreamLink, stopReplyOf, type Outgoing } from './upstream.js';

/** Options of {@link GdbProxy.start}. */
export interface GdbProxyOptions {
  /** QEMU's gdbstub: `HOST:PORT` or a unix socket path. */
  gdbstub: RspEndpoint;
  /** Where GDB connects: `HOST:PORT` (port 0 picks a free one) or a unix socket path. */
  listen: string | ListenAddress;
  /** How long connecting to QEMU may take, and how long QEMU may stay silent before it is reported as held by another client (default 2000 ms). */
  connectMs?: number;
  /** How many requests of pagewalk's may be in flight at once (default 64). */
  window?: number;
}

/** A stop, as the proxy reports it. */
export interface ProxyStop {
  readonly reply: StopReply;
  /** The stop reply as QEMU sent it. */
  readonly payload: string;
  /** Whose run it ends: GDB's, a pagewalk client's, or nobody's (a stop after a QMP `cont`, or from connecting). */
  readonly cause: 'gdb' | 'pagewalk' | 'nobody';
  /** Whether GDB was sent this stop reply. */
  readonly toGdb: boolean;
}

/** Events of a {@link GdbProxy}. */
export interface GdbProxyEvents {
  /** The guest stopped (or exited); every stop GDB is told of comes here too. */
  stop: [stop: ProxyStop];
  /** GDB changed registers or memory without a stop: what pagewalk read before may be stale. */
  changed: [];
  /** A packet or interrupt crossed one of the proxy's connections (emitted only while someone listens). */
  traffic: [entry: TrafficEntry];
  /** A GDB connected (`label` says from where). */
  gdbConnected: [label: string];
  /** The GDB left; `detached` when it detached (`D`) first. */
  gdbDisconnected: [label: string, detached: boolean];
  /** Something went wrong that the proxy survived (damaged packets, a lost packet sent again, a failed reconnect). */
  problem: [message: string];
  /** The proxy stopped: closed, or QEMU went away. */
  end: [reason: string];
}

type Owner =
  | { readonly kind: 'gdb'; readonly session: GdbSession; readonly effect: GdbEffect | null }
  | { readonly kind: 'pagewalk'; readonly request: PagewalkRequest }
  | { readonly kind: 'proxy'; readonly done: (answer: string) => void; readonly fail: (e: Error) => void };

/** What the proxy learns from a packet of GDB's once QEMU has answered it. */
type GdbEffect = 'no-ack' | 'detach' | 'writes' | 'phy-query' | { readonly phySet: boolean | null };

/** The QEMU connection and what the proxy knows about it. */
interface Upstream {
  readonly link: UpstreamLink<Owner>;
  readonly phy: PhyMemModes;
  /** Set once the proxy's own handshake (qSupported, vCont?, PhyMemMode) is answered. */
  ready: boolean;
  /** Set once a GDB has used this connection: the run state is then GDB's. */
  usedByGdb: boolean;
  /** Set once GDB's `D` was accepted: QEMU runs the guest and has forgotten the attachment. */
  detached: boolean;
  /** Set when the proxy closes it on purpose. */
  releasing: boolean;
  /** A Ctrl-C already sent to end the run of `interrupted`. */
  interrupted: Outgoing<Owner> | null;
  /** A PhyMemMode query of the proxy's own is in flight. */
  querying: boolean;
}

/** What QEMU answered to the proxy's own handshake, reused for pagewalk's clients. */
interface StubFacts {
  supported: string;
  vCont: string;
}

const DEFAULT_WINDOW = 64;
const DEFAULT_CONNECT_MS = 2000;
/** How long the proxy's own handshake may take once QEMU has said something. */
const HANDSHAKE_MS = 15_000;

/** The GDB proxy. Create it with {@link GdbProxy.start}. */
export class GdbProxy extends EventEmitter<GdbProxyEvents> {
  private up: Upstream | null = null;
  private opening: Promise<void> | null = null;
  /** A connection being let go (QEMU serves the next one once it is closed). */
  private letting: Promise<void> | null = null;
  private gdb: GdbSession | null = null;
  /** GDB's packets and interrupts that came while no QEMU connection was open (null: an interrupt). */
  private readonly gdbBacklog: (Uint8Array | null)[] = [];
  private readonly sessions = new Set<PagewalkSession>();
  private readonly queue: PagewalkRequest[] = [];
  private facts: StubFacts | null = null;
  private lastStop: string | null = null;
  private nextSession = 1;
  private seq = 0;
  private readonly started = Date.now();
  private listener: SingleClientListener | null = null;
  private closing: Promise<void> | null = null;
  /** Set as soon as the proxy starts to stop. */
  private halting = false;
  private readonly window: number;
  private readonly connectMs: number;
  private readonly upstreamLabel: string;
  /** Resolves with why the proxy stopped. */
  readonly ended: Promise<string>;
  private finish!: (reason: string) => void;

  private constructor(private readonly options: GdbProxyOptions) {
    super();
    this.window = Math.max(1, options.window ?? DEFAULT_WINDOW);
    this.connectMs = options.connectMs ?? DEFAULT_CONNECT_MS;
    this.upstreamLabel = `the gdbstub at ${endpointLabel(parseEndpoint(options.gdbstub))}`;
    this.ended = new Promise((resolve) => (this.finish = resolve));
  }

  /**
   * Connects to QEMU's gdbstub, then listens for GDB. Throws ProxyError: E_UPSTREAM (QEMU cannot be
   * reached, is held by another client, or does not speak RSP), E_ADDRESS or E_LISTEN (the address
   * for GDB).
   */
  static async start(options: GdbProxyOptions): Promise<GdbProxy> {
    const where = typeof options.listen === 'string' ? parseListenAddress(options.listen) : options.listen;
    let proxy: GdbProxy;
    try {
      parseEndpoint(options.gdbstub);
      proxy = new GdbProxy(options);
    } catch (e) {
      throw new ProxyError('E_ADDRESS', `--gdb: ${(e as Error).message}`);
    }
    await proxy.openUpstream();
    try {
      proxy.listener = await listening(() => SingleClientListener.listen(where, (s) => proxy.serveGdb(s)));
    } catch (e) {
      await proxy.close();
      throw e;
    }
    proxy.releaseIfIdle();
    return proxy;
  }

  /** Where GDB connects (`gdb -ex 'target remote ADDRESS'`). */
  get address(): ListenAddress {
    if (!this.listener) throw new ProxyError('E_CLOSED', 'the proxy is not listening');
    return this.listener.address;
  }

  /** {@link address} as text. */
  get addressLabel(): string {
    return addressLabel(this.address);
  }

  /** Who the proxy forwards to, for messages ("the gdbstub at 127.0.0.1:1234"). */
  get gdbstubLabel(): string {
    return this.upstreamLabel;
  }

  /** True while a GDB is connected. */
  get gdbConnected(): boolean {
    return this.gdb !== null;
  }

  /** True while the proxy holds QEMU's gdbstub (someone uses it). */
  get holdingQemu(): boolean {
    return this.up !== null;
  }

  /** True while the guest runs on someone's behalf (a `c`/`s` in flight, or GDB detached and left it running). */
  get guestRunning(): boolean {
    const up = this.up;
    return up !== null && (up.link.runningFor !== null || up.detached);
  }

  /**
   * A new pagewalk client in this process: an RSP connection to the proxy (give it to
   * `RspClient.over`). Throws ProxyError (E_CLOSED) once the proxy is closed.
   */
  connect(): Duplex {
    const [mine, theirs] = duplexPair();
    this.attach(mine, 'pagewalk (in process)');
    return theirs;
  }

  /** Serves a pagewalk client over `stream` (the control socket hands its connections here). Throws ProxyError (E_CLOSED) once closed. */
  attach(stream: Duplex, label: string): void {
    if (this.halting) {
      stream.destroy();
      throw new ProxyError('E_CLOSED', 'the proxy is closed');
    }
    const id = this.nextSession++;
    const link = new StubLink(stream, `${label} (pagewalk#${id})`);
    const session: PagewalkSession = new PagewalkSession(id, link, (p) => this.log('proxy', session.party, p));
    this.sessions.add(session);
    link.on('packet', (p) => this.fromPagewalk(session, p));
    link.on('interrupt', () => this.interruptFromPagewalk(session));
    link.on('damaged', (m) => this.emit('problem', m));
    link.on('close', () => this.dropSession(session));
  }

  /**
   * Stops: closes GDB's connection and pagewalk's, puts QEMU's PhyMemMode back to GDB's value, and
   * closes the QEMU connection (after `D`, which resumes the guest, when only pagewalk held it and
   * its connecting stopped the guest). Closing twice is harmless.
   */
  close(): Promise<void> {
    return this.stop('closed');
  }

  private stop(reason: string): Promise<void> {
    if (!this.closing) {
      this.halting = true;
      this.closing = this.shutdown(reason);
    }
    return this.closing;
  }

  // ---- GDB ----

  private serveGdb(socket: Socket): void {
    const label = `GDB at ${socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'the unix socket'}`;
    const session = new GdbSession(new StubLink(socket, label));
    this.gdb = session;
    session.link.on('packet', (p) => this.fromGdb(session, p));
    session.link.on('interrupt', () => this.fromGdb(session, null));
    session.link.on('damaged', (m) => this.emit('problem', m));
    session.link.on('close', () => this.gdbLeft(session, label));
    this.emit('gdbConnected', label);
    const up = this.up;
    if (!up) return this.reopen();
    // pagewalk holds QEMU: GDB takes over that connection, as if it had connected to a stopped guest.
    up.usedByGdb = true;
  }

  /** Connects to QEMU for whoever needs it now (once the connection being let go is closed). */
  private reopen(): void {
    if (this.halting) return;
    this.opening ??= (async () => {
      await this.letting;
      if (!this.up) await this.openUpstream();
    })()
      .catch((e: unknown) => {
        if (this.halting) return;
        this.emit('problem', `cannot connect to ${this.upstreamLabel} again: ${(e as Error).message}`);
        void this.stop(`${this.upstreamLabel} cannot be reached any more`);
      })
      .finally(() => (this.opening = null));
  }

  /** Lets go of QEMU when nobody uses it: no GDB, and no pagewalk client (or GDB detached from it). */
  private releaseIfIdle(): void {
    const up = this.up;
    if (!up || !up.ready || this.gdb || (this.sessions.size > 0 && !up.detached) || this.halting) return;
    up.releasing = true;
    this.up = null;
    const letting = (async () => {
      try {
        await this.leaveAsFound(up);
      } catch {
        // gone meanwhile: nothing to leave
      }
      up.link.close();
      await up.link.whenClosed;
    })();
    this.letting = letting;
    void letting.finally(() => {
      if (this.letting === letting) this.letting = null;
      // Requests of pagewalk's that were waiting (for a guest GDB let run) need QEMU again.
      if (this.queue.length > 0 && !this.up && !this.gdb) this.reopen();
    });
  }

  private fromGdb(session: GdbSession, payload: Uint8Array | null): void {
    if (session.closed) return;
    this.log('gdb', 'proxy', payload);
    const up = this.up;
    if (!up || this.gdbBacklog.length > 0) {
      this.gdbBacklog.push(payload);
      return;
    }
    this.forwardGdb(up, session, payload);
  }

  private forwardGdb(up: Upstream, session: GdbSession, payload: Uint8Array | null): void {
    if (payload === null) {
      up.link.interrupt();
      this.log('proxy', 'qemu', null, 'gdb');
      return;
    }
    // GDB goes first: a run that is not GDB's own ends before GDB's packet.
    const run = up.link.runningFor;
    if (run && !(run.owner.kind === 'gdb' && run.owner.session === session)) this.interruptRun(up, run);
    this.restoreGdbMode(up);
    const text = latin1(payload);
    const expect = expectFor(text);
    this.send(up, { kind: 'gdb', session, effect: gdbEffect(text) }, text);
    if (expect !== 'none') session.outstanding++;
  }

  private gdbAnswered(up: Upstream, session: GdbSession, effect: GdbEffect | null, payload: Uint8Array): void {
    session.outstanding = Math.max(0, session.outstanding - 1);
    const text = effect === null ? '' : latin1(payload);
    if (effect === 'no-ack' && text === 'OK') up.link.endAcks();
    else if (effect === 'detach' && text === 'OK') session.detached = up.detached = true;
    else if (effect === 'phy-query') up.phy.queried(text);
    else if (effect === 'writes' && text === 'OK') this.emit('changed');
    else if (effect !== null && typeof effect === 'object') {
      up.phy.gdbSet(effect.phySet, text);
      if (up.phy.unknown) this.queryPhyMemMode(up);
    }
    if (session.closed) return;
    this.toGdb(session, payload);
    if (effect === 'no-ack' && text === 'OK') session.link.endAcks();
  }

  private toGdb(session: GdbSession, payload: Uint8Array): void {
    session.link.send(payload);
    this.log('proxy', 'gdb', payload);
  }

  private gdbLeft(session: GdbSession, label: string): void {
    session.closed = true;
    if (this.gdb === session) this.gdb = null;
    this.gdbBacklog.length = 0;
    this.emit('gdbDisconnected', label, session.detached);
    this.releaseIfIdle();
    if (this.up) this.pump(this.up);
  }

  // ---- pagewalk's clients ----

  private fromPagewalk(session: PagewalkSession, payload: Uint8Array): void {
    this.log(session.party, 'proxy', payload);
    const text = latin1(payload);
    const expect = expectFor(text);
    const base = { session, payload: text, expect, mode: session.mode, answer: null, progress: [] as Uint8Array[] };
    const local = (answer: () => string, afterAnswer: (() => void) | null = null): void =>
      session.add({ ...base, local: answer, afterAnswer });
    const phy = this.up?.phy.supported ?? this.phySupported;
    if (text.startsWith('qSupported')) return local(() => this.supportedForPagewalk(), () => (session.handshaken = true));
    if (text === 'vCont?') return local(() => this.facts?.vCont ?? '');
    if (text === 'QStartNoAckMode') return local(() => 'OK', () => session.link.endAcks());
    if (text === '?') return local(() => this.lastStop ?? 'S05');
    if (isDetach(text)) {
      session.mode = null;
      return local(() => 'OK');
    }
    const refused = refusedForPagewalk(text);
    if (refused !== null) return local(() => '');
    if (phy === true && isPhyMemModeSet(text)) {
      const value = phyMemModeSet(text);
      if (value === null) return local(() => 'E22');
      session.mode = value;
      return local(() => 'OK');
    }
    const seen = session.mode ?? this.up?.phy.gdb ?? null;
    if (phy === true && isPhyMemModeQuery(text) && seen !== null) return local(() => (seen ? '1' : '0'));
    const request: PagewalkRequest = { ...base, local: null, afterAnswer: null };
    session.add(request);
    this.queue.push(request);
    if (this.up) this.pump(this.up);
    else if (!this.gdb) this.reopen();
  }

  private interruptFromPagewalk(session: PagewalkSession): void {
    this.log(session.party, 'proxy', null);
    const up = this.up;
    const run = up?.link.runningFor;
    if (up && run && run.owner.kind === 'pagewalk' && run.owner.request.session === session) {
      this.interruptRun(up, run);
      return;
    }
    // A run still queued never starts: it ends at once, interrupted.
    const i = this.queue.findIndex((r) => r.session === session && r.expect === 'resume');
    if (i >= 0) session.settle(this.queue.splice(i, 1)[0]!, 'S02');
  }

  private dropSession(session: PagewalkSession): void {
    session.closed = true;
    this.sessions.delete(session);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.session === session) this.queue.splice(i, 1);
    this.releaseIfIdle();
  }

  private supportedForPagewalk(): string {
    const features = (this.facts?.supported ?? '').split(';').filter((f) => f !== '' && !f.startsWith('QStartNoAckMode'));
    features.push('QStartNoAckMode+');
    return features.join(';');
  }

  /** Sends queued requests of pagewalk's while the guest is stopped and GDB waits for nothing. */
  private pump(up: Upstream): void {
    if (!up.ready || up.releasing || up.detached || up.link.closed) return;
    if (this.gdb && this.gdb.outstanding > 0) return;
    if (up.link.runningFor) return;
    if (up.phy.unknown) return this.queryPhyMemMode(up);
    let inFlight = up.link.pending.filter((o) => o.owner.kind === 'pagewalk').length;
    while (inFlight < this.window) {
      const r = this.queue.shift();
      if (!r) return;
      if (r.session.closed) continue;
      const sw = up.phy.switchFor(r.mode);
      if (sw) this.internal(up, sw, (a) => a !== 'OK' && up.phy.switchFailed());
      this.send(up, { kind: 'pagewalk', request: r }, r.payload);
      inFlight++;
      if (r.expect === 'resume') return;
    }
  }

  // ---- QEMU ----

  /** Connects to QEMU and runs the proxy's own handshake; GDB's packets that wait go out right behind it. */
  private async openUpstream(): Promise<void> {
    const where = parseEndpoint(this.options.gdbstub);
    let socket: Socket;
    try {
      socket = await openSocket(where, this.connectMs, systemTimers);
    } catch (e) {
      throw new ProxyError('E_UPSTREAM', e instanceof RspError ? e.message : `cannot connect to ${this.upstreamLabel}: ${(e as Error).message}`, { cause: e });
    }
    socket.setNoDelay(true);
    if (this.halting) {
      socket.destroy();
      throw new ProxyError('E_CLOSED', 'the proxy is closed');
    }
    const link = new UpstreamLink<Owner>(socket, this.upstreamLabel);
    const up: Upstream = {
      link,
      phy: new PhyMemModes(),
      ready: false,
      usedByGdb: this.gdb !== null,
      detached: false,
      releasing: false,
      interrupted: null,
      querying: false,
    };
    this.up = up;
    link.on('answer', (out, p) => this.answered(up, out, p));
    link.on('progress', (out, p) => this.progressed(out, p));
    link.on('unsolicited', (p, stop) => this.unsolicited(up, p, stop));
    link.on('resent', (out, why) => {
      this.log(partyOf(out.owner), 'qemu', payloadBytes(out.payload), partyOf(out.owner), 'resent');
      this.emit('problem', `sent ${JSON.stringify(out.payload.slice(0, 40))} to ${this.upstreamLabel} again: ${why}`);
    });
    link.on('damaged', (m) => this.emit('problem', m));
    link.on('close', (waiting) => this.upstreamClosed(up, waiting));
    const handshake = Promise.all([this.ask(up, 'qSupported'), this.ask(up, 'vCont?'), this.ask(up, 'qqemu.PhyMemMode')]);
    for (const p of this.gdbBacklog.splice(0)) if (this.gdb) this.forwardGdb(up, this.gdb, p);
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (!link.heardFrom) {
          reject(new ProxyError('E_UPSTREAM', `${this.upstreamLabel} is in use by another client (GDB?): it accepted the connection but sent nothing in ${this.connectMs} ms`));
          return;
        }
        timer = setTimeout(() => reject(new ProxyError('E_UPSTREAM', `${this.upstreamLabel} does not finish the handshake (qSupported, vCont?, qqemu.PhyMemMode)`)), HANDSHAKE_MS);
      }, this.connectMs);
    });
    try {
      const [supported, vCont, phy] = await Promise.race([handshake, silent]);
      if (supported === '') throw new ProxyError('E_UPSTREAM', `${this.upstreamLabel} does not answer qSupported: is it a gdbstub?`);
      this.facts = { supported, vCont };
      up.phy.queried(phy);
      this.phySupported = up.phy.supported;
      up.ready = true;
      this.pump(up);
    } catch (e) {
      up.releasing = true;
      link.close();
      if (this.up === up) this.up = null;
      throw e instanceof ProxyError ? e : new ProxyError('E_UPSTREAM', `${this.upstreamLabel}: ${(e as Error).message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the stub has PhyMemMode, as last found (kept across reconnections to the same QEMU). */
  private phySupported: boolean | null = null;

  private answered(up: Upstream, out: Outgoing<Owner>, payload: Uint8Array): void {
    const owner = out.owner;
    const live = this.isLive(owner);
    this.log('qemu', 'proxy', payload, partyOf(owner), live ? undefined : 'dropped');
    if (up.interrupted === out) up.interrupted = null;
    if (owner.kind === 'gdb') this.gdbAnswered(up, owner.session, owner.effect, payload);
    else if (owner.kind === 'pagewalk') {
      owner.request.answer = payload;
      owner.request.session.flush();
    } else owner.done(latin1(payload));
    if (out.expect === 'resume') this.stopped(payload, owner);
    this.pump(up);
  }

  private progressed(out: Outgoing<Owner>, payload: Uint8Array): void {
    const owner = out.owner;
    this.log('qemu', 'proxy', payload, partyOf(owner), 'progress');
    if (owner.kind === 'gdb' && !owner.session.closed) this.toGdb(owner.session, payload);
    else if (owner.kind === 'pagewalk') {
      owner.request.progress.push(payload);
      owner.request.session.flush();
    }
  }

  private unsolicited(up: Upstream, payload: Uint8Array, stop: StopReply | null): void {
    this.log('qemu', 'proxy', payload, 'nobody');
    const gdb = this.gdb;
    // GDB hears of what it did not ask for only while it waits for nothing (else it would take it for
    // the answer to its request); that the target exited, it always hears.
    const toGdb = gdb !== null && !gdb.closed && (gdb.outstanding === 0 || (stop !== null && stop.kind !== 'stopped'));
    if (toGdb) this.toGdb(gdb, payload);
    if (!stop) {
      if (!toGdb) this.emit('problem', `${this.upstreamLabel} sent a packet nobody waits for: ${JSON.stringify(latin1(payload.subarray(0, 60)))}`);
      return;
    }
    this.noteStop(payload, stop, 'nobody', toGdb, null);
    this.pump(up);
  }

  /** A run ended (the answer to a `c`/`s`/`vCont`). */
  private stopped(payload: Uint8Array, owner: Owner): void {
    const stop = stopReplyOf(payload);
    if (!stop) return;
    let toGdb = owner.kind === 'gdb' && !owner.session.closed;
    // The run of a GDB that left, stopped because a new GDB connected: the new one hears of it, as it
    // would have from QEMU on connecting.
    const gdb = this.gdb;
    if (!toGdb && owner.kind === 'gdb' && gdb && !gdb.closed && gdb.outstanding === 0) {
      this.toGdb(gdb, payload);
      toGdb = true;
    }
    const except = owner.kind === 'pagewalk' ? owner.request.session : null;
    this.noteStop(payload, stop, owner.kind === 'proxy' ? 'nobody' : owner.kind, toGdb, except);
  }

  private noteStop(payload: Uint8Array, stop: StopReply, cause: ProxyStop['cause'], toGdb: boolean, except: PagewalkSession | null): void {
    this.lastStop = latin1(payload);
    for (const s of this.sessions) {
      // Only clients without acknowledgements can take a stop at any moment (in ack mode a stop T02
      // racing a request makes RSP clients send that request again), and never one that waits for a
      // run of its own, which would take the stop for its end.
      if (s === except || !s.handshaken || s.closed || s.link.ackMode || s.resuming) continue;
      s.notify(payload);
    }
    this.emit('stop', { reply: stop, payload: this.lastStop, cause, toGdb });
  }

  private upstreamClosed(up: Upstream, waiting: Outgoing<Owner>[]): void {
    if (this.up === up) this.up = null;
    for (const out of waiting) if (out.owner.kind === 'proxy') out.owner.fail(new ProxyError('E_UPSTREAM', `${this.upstreamLabel} closed the connection`));
    if (up.releasing) {
      // Closed on purpose: what pagewalk's clients still wait for goes out on the next connection.
      const again = waiting.flatMap((o) => (o.owner.kind === 'pagewalk' && !o.owner.request.session.closed ? [o.owner.request] : []));
      for (const r of again) r.progress.length = 0;
      this.queue.unshift(...again);
      return;
    }
    const why = this.lastStop && /^[WX]/.test(this.lastStop) ? `the guest exited (${this.lastStop})` : `${this.upstreamLabel} closed the connection`;
    void this.stop(why);
  }

  /** Sends `payload` to QEMU for `owner`, logged. */
  private send(up: Upstream, owner: Owner, payload: string): Outgoing<Owner> {
    const out = up.link.send(owner, payload, expectFor(payload));
    this.log(partyOf(owner), 'qemu', payloadBytes(payload), partyOf(owner));
    return out;
  }

  /** A request of the proxy's own; `then` sees the answer. */
  private internal(up: Upstream, payload: string, then: (answer: string) => void): void {
    this.send(up, { kind: 'proxy', done: then, fail: () => undefined }, payload);
  }

  /** A request of the proxy's own, awaited. Rejects when the connection closes first. */
  private ask(up: Upstream, payload: string): Promise<string> {
    return new Promise((resolve, reject) => this.send(up, { kind: 'proxy', done: resolve, fail: reject }, payload));
  }

  private queryPhyMemMode(up: Upstream): void {
    if (up.querying) return;
    up.querying = true;
    this.internal(up, 'qqemu.PhyMemMode', (a) => {
      up.querying = false;
      up.phy.queried(a);
      this.pump(up);
    });
  }

  /** Puts QEMU back into GDB's PhyMemMode before a packet of GDB's. */
  private restoreGdbMode(up: Upstream): void {
    const sw = up.phy.switchFor(null);
    if (sw) this.internal(up, sw, (a) => a !== 'OK' && up.phy.switchFailed());
  }

  private interruptRun(up: Upstream, run: Outgoing<Owner>): void {
    if (up.interrupted === run) return;
    up.interrupted = run;
    up.link.interrupt();
    this.log('proxy', 'qemu', null, partyOf(run.owner));
  }

  private isLive(owner: Owner): boolean {
    if (owner.kind === 'gdb') return !owner.session.closed;
    if (owner.kind === 'pagewalk') return !owner.request.session.closed;
    return true;
  }

  private async shutdown(reason: string): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    this.gdb?.link.close();
    for (const s of [...this.sessions]) s.link.close();
    await listener?.close();
    await this.opening;
    await this.letting;
    const up = this.up;
    this.up = null;
    if (up && !up.link.closed) {
      up.releasing = true;
      try {
        await this.leaveAsFound(up);
      } catch {
        // the connection went away meanwhile: nothing left to restore
      }
      up.link.close();
      await up.link.whenClosed;
    }
    this.finish(reason);
    this.emit('end', reason);
  }

  /** PhyMemMode back to GDB's; a guest the proxy stopped by connecting, and nobody used since, resumed. */
  private async leaveAsFound(up: Upstream): Promise<void> {
    if (!up.ready || up.link.runningFor || up.detached || up.link.closed) return;
    const deadline = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), this.connectMs).unref());
    const sw = up.phy.switchFor(null);
    if (sw) await Promise.race([this.ask(up, sw), deadline]);
    if (up.link.stoppedOnConnect && !up.usedByGdb) {
      let reply = await Promise.race([this.ask(up, 'D'), deadline]);
      if (reply === 'E22') reply = await Promise.race([this.ask(up, 'D;1'), deadline]);
    }
  }

  private log(from: Party, to: Party, payload: Uint8Array | null, forWhom?: Party | 'nobody', note?: TrafficEntry['note']): void {
    if (this.listenerCount('traffic') === 0) return;
    const entry: TrafficEntry = {
      seq: ++this.seq,
      ms: Date.now() - this.started,
      from,
      to,
      kind: payload === null ? 'interrupt' : 'packet',
      payload: payload === null ? '' : latin1(payload),
    };
    if (forWhom !== undefined) entry.for = forWhom;
    if (note !== undefined) entry.note = note;
    this.emit('traffic', entry);
  }
}

function partyOf(owner: Owner): Party {
  return owner.kind === 'gdb' ? 'gdb' : owner.kind === 'proxy' ? 'proxy' : owner.request.session.party;
}

function gdbEffect(text: string): GdbEffect | null {
  if (text === 'QStartNoAckMode') return 'no-ack';
  if (isDetach(text)) return 'detach';
  if (isPhyMemModeQuery(text)) return 'phy-query';
  if (isPhyMemModeSet(text)) return { phySet: phyMemModeSet(text) };
  if (writesGuestState(text)) return 'writes';
  return null;
}
