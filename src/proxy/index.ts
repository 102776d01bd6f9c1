/** The GDB proxy: GDB and pagewalk share one gdbstub (`pagewalk proxy`). */
export * from './controlSocket.js';
export * from './duplexPair.js';
export * from './errors.js';
export * from './listen.js';
export * from './packets.js';
export * from './phyMemMode.js';
export * from './proxy.js';
export * from './proxyTarget.js';
export * from './sessions.js';
export * from './stubLink.js';
export * from './traffic.js';
export * from './upstream.js';
