/**
 * What the proxy needs to know about a request packet, from its payload alone: what kind of answer
 * it waits for (so replies from one in-order stream can be handed back to whoever asked), and which
 * packets a pagewalk client may not send through to QEMU because they change the state of GDB's
 * session (thread selection, non-stop mode, detaching, killing, stepping flags).
 */

/**
 * What the sender of a packet waits for:
 * - `reply`: one packet (most requests);
 * - `stop`: one stop reply, at once (`?`);
 * - `resume`: a stop reply once the target stops again (`c`, `s`, `vCont;...`, `k`), with console
 *   output (`O`) and file-I/O requests (`F`) possibly before it;
 * - `monitor`: `O` packets, then a final reply (`qRcmd`);
 * - `none`: nothing (`F` replies to file-I/O requests, which let the target run on).
 */
export type Expect = 'reply' | 'stop' | 'resume' | 'monitor' | 'none';

/** The kind of answer `payload` (a request, latin1) waits for. */
export function expectFor(payload: string): Expect {
  const c = payload[0];
  switch (c) {
    case 'c':
    case 'C':
    case 's':
    case 'S':
    case 'k':
    case 'i':
    case 'I':
      return 'resume';
    case '?':
      return 'stop';
    case 'F':
      return 'none';
    case 'b':
      // bc / bs: reverse continue and step.
      return payload === 'bc' || payload === 'bs' ? 'resume' : 'reply';
    case 'v':
      if (payload.startsWith('vCont;') || payload.startsWith('vAttach;') || payload.startsWith('vRun')) return 'resume';
      return 'reply';
    case 'q':
      return payload.startsWith('qRcmd,') ? 'monitor' : 'reply';
    default:
      return 'reply';
  }
}

/** True for `D` and `D;PID`: detaching ends the debugging session; QEMU lets the guest run and forgets the attachment. */
export function isDetach(payload: string): boolean {
  return payload === 'D' || payload.startsWith('D;');
}

/** The value a `Qqemu.PhyMemMode:N` packet sets (QEMU reads N as hex; any non-zero value means physical), or null for other packets and a malformed N. */
export function phyMemModeSet(payload: string): boolean | null {
  const m = /^Qqemu\.PhyMemMode:([0-9a-fA-F]+)$/.exec(payload);
  return m ? parseInt(m[1]!, 16) !== 0 : null;
}

/** True for packets that set PhyMemMode, well-formed or not. */
export function isPhyMemModeSet(payload: string): boolean {
  return payload.startsWith('Qqemu.PhyMemMode:');
}

/** True for the PhyMemMode query. */
export function isPhyMemModeQuery(payload: string): boolean {
  return payload === 'qqemu.PhyMemMode';
}

/** True for the packets that write guest state GDB may have cached: registers and memory. */
export function writesGuestState(payload: string): boolean {
  const c = payload[0];
  return c === 'M' || c === 'X' || c === 'P' || c === 'G';
}

/**
 * Why a pagewalk client may not send `payload` through the proxy, or null when it may. These change
 * GDB's session in QEMU: the selected thread (`H`), the run mode (`QNonStop`, `Qqemu.sstep`), the
 * attachment (`vAttach`, `vKill`, `k`, `R`, `vRun`, `!`), or what the stub reports (`QThreadEvents`, signals, tracepoints).
 */
export function refusedForPagewalk(payload: string): string | null {
  if (payload === 'k' || payload.startsWith('vKill')) return 'killing the guest is left to GDB';
  if (payload.startsWith('vAttach') || payload.startsWith('vRun') || payload[0] === 'R' || payload === '!') return 'the session is GDB\'s';
  if (payload[0] === 'H') return 'the thread GDB selected stays selected';
  if (payload.startsWith('Qqemu.sstep')) return 'the stepping flags are GDB\'s';
  if (/^Q(?:NonStop|ThreadEvents|CatchSyscalls|PassSignals|ProgramSignals|T[A-Za-z])/.test(payload)) return 'it changes GDB\'s session';
  return null;
}
