/** `pagewalk launch`: QEMU started for debugging, attached, with its console (see {@link launchQemu}). */
export * from './errors.js';
export * from './launch.js';
export * from './launchTarget.js';
export * from './plan.js';
export * from './qemuArgs.js';
