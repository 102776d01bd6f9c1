/**
 * The controls of a target reached over RSP (the Debuggee interface): breakpoints as hardware
 * breakpoints (`Z1`, which never patch guest memory: QEMU's TCG takes any number, KVM four),
 * single steps that retry QEMU's rare empty step (QEMU-FACTS §7), continue, interrupt, register
 * writes, and the stops nobody here asked for.
 */
import { BreakpointType } from '../rsp/client.js';
import type { StopReply } from '../rsp/codec.js';
import type { DebugControl, Stop } from '../target/debuggee.js';
import { liveError } from '../target/liveErrors.js';
import type { RspTarget } from '../target/rspTarget.js';
import { stopFromReply } from './stops.js';

/** How often a step that left RIP where it was is tried again. */
const EMPTY_STEP_RETRIES = 3;

/** DebugControl over an {@link RspTarget}. */
export class RspControl implements DebugControl {
  private runs = 0;

  constructor(private readonly target: RspTarget) {}

  get running(): boolean {
    return this.runs > 0;
  }

  /** Inserts a hardware breakpoint (`Z1`) at `va`. Rejects with the target's error (E_UNREADABLE when refused). */
  async insertBreakpoint(va: bigint): Promise<void> {
    await this.guard(() => this.target.client.insertBreakpoint(BreakpointType.HARDWARE, va, 1));
  }

  /** Removes it (`z1`). */
  async removeBreakpoint(va: bigint): Promise<void> {
    await this.guard(() => this.target.client.removeBreakpoint(BreakpointType.HARDWARE, va, 1));
  }

  /** One instruction; tried again (up to three times) when QEMU answers without moving RIP. */
  async step(): Promise<Stop> {
    const before = await this.rip();
    let reply: StopReply | null = null;
    for (let i = 0; i <= EMPTY_STEP_RETRIES; i++) {
      reply = await this.run(() => this.target.step());
      if (reply.kind !== 'stopped' || reply.signal !== 5 || (await this.rip()) !== before) break;
    }
    return stopFromReply(reply!, true);
  }

  /** Resumes; resolves with the stop that ends the run. */
  async cont(): Promise<Stop> {
    return stopFromReply(await this.run(() => this.target.cont()), false);
  }

  /** Stops a run of this control's own; does nothing otherwise. */
  async interrupt(): Promise<void> {
    if (this.runs > 0) await this.guard(() => this.target.client.interrupt());
  }

  async writeRegister(name: string, value: bigint): Promise<void> {
    await this.target.writeRegister(name, value);
  }

  /** Stops (and exits) that did not end a run of this control's own. */
  onUnsolicitedStop(listener: (stop: Stop) => void): () => void {
    const client = this.target.client;
    const onStop = (s: StopReply): void => listener(stopFromReply(s, false));
    const onExit = (s: StopReply): void => {
      if (this.runs === 0) listener(stopFromReply(s, false));
    };
    client.on('stop', onStop);
    client.on('exit', onExit);
    return () => {
      client.off('stop', onStop);
      client.off('exit', onExit);
    };
  }

  private async run(fn: () => Promise<StopReply>): Promise<StopReply> {
    this.runs++;
    try {
      return await fn();
    } finally {
      this.runs--;
    }
  }

  private async rip(): Promise<bigint | undefined> {
    return this.guard(async () => (await this.target.client.readRegisters()).get('rip'));
  }

  /** Runs a client call, turning errors of the wire into TargetErrors as the target's own methods do. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw liveError(e, `the gdbstub at ${this.target.client.endpoint}`, 'use');
    }
  }
}
