/**
 * The QMP layer: transport (framing), client (session, events, human-monitor commands), parsers of
 * human-monitor output, and guest-physical memory through the monitor.
 */
export * from './clock.js';
export * from './errors.js';
export * from './transport.js';
export * from './client.js';
export * from './hmp.js';
export { checkHmpOutput } from './hmpText.js';
export * from './physical.js';
