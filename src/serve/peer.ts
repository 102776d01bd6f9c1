/**
 * What the JSON-RPC handler needs of a client: a way to send at once (answers, events), and a way
 * to stream that waits while the client falls behind. The WebSocket connection implements it;
 * tests implement it in memory.
 */

/** One client, as the handler sees it. */
export interface RpcPeer {
  /** True until the client goes away. */
  readonly open: boolean;
  /** Sends a message now (an answer, an event); never waits. */
  send(text: string): void;
  /**
   * Sends one message of a stream and resolves when the client can take more. Rejects with
   * ServeError E_DISCONNECTED when the client is gone, E_SLOW_CLIENT when it stays behind while
   * `othersWait()` says other clients wait for the target.
   */
  push(text: string, othersWait: () => boolean): Promise<void>;
}
