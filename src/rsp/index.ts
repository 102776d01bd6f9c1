/** The GDB Remote Serial Protocol: framing, codecs, target descriptions and the client session. */
export * from './chunks.js';
export * from './client.js';
export * from './codec.js';
export * from './endpoint.js';
export * from './errors.js';
export * from './framing.js';
export * from './targetXml.js';
export * from './timers.js';
