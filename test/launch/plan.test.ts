/**
 * What `launch` adds to QEMU's command line, and what of the user's it keeps: pagewalk's options
 * only where the user gave no equivalent, in one pure function.
 */
import { describe, expect, it } from 'vitest';
import { LaunchError } from '../../src/launch/errors.js';
import { gdbEndpointOf, planLaunch } from '../../src/launch/plan.js';
import { optionProperties, readQemuArgs, splitOptionValue } from '../../src/launch/qemuArgs.js';

const DIR = '/run/pw';
const plan = (args: string[], attach = false, log?: string) => planLaunch(args, { dir: DIR, attach, log });
const KERNEL = ['-kernel', 'kernel.elf', '-m', '128'];

function argsError(f: () => unknown): LaunchError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LaunchError);
    expect((e as LaunchError).code).toBe('E_ARGS');
    return e as LaunchError;
  }
  throw new Error('no error');
}

describe('reading QEMU\'s command line', () => {
  it('pairs options with their values, knows the options without one, and keeps positional arguments', () => {
    expect(readQemuArgs(['disk.img', '-s', '-m', '128', '--gdb', 'tcp::1', '-nographic', '-S'])).toEqual([
      { kind: 'positional', value: 'disk.img', index: 0 },
      { kind: 'option', name: '-s', value: null, index: 1 },
      { kind: 'option', name: '-m', value: '128', index: 2 },
      { kind: 'option', name: '-gdb', value: 'tcp::1', index: 4 },
      { kind: 'option', name: '-nographic', value: null, index: 6 },
      { kind: 'option', name: '-S', value: null, index: 7 },
    ]);
    // A value missing at the very end is QEMU's to complain about.
    expect(readQemuArgs(['-kernel'])).toEqual([{ kind: 'option', name: '-kernel', value: null, index: 0 }]);
  });

  it('splits values at commas, a doubled comma being a comma', () => {
    expect(splitOptionValue('file,path=/a,,b,server=on')).toEqual(['file', 'path=/a,b', 'server=on']);
    expect(optionProperties('socket,id=g,path=/p,server')).toEqual(new Map([['', 'socket'], ['id', 'g'], ['path', '/p'], ['server', 'on']]));
  });
});

describe('planLaunch', () => {
  it('adds everything to a bare command line, after the user\'s arguments', () => {
    const p = plan(KERNEL, true);
    expect(p.added).toEqual([
      '-gdb', 'unix:/run/pw/gdb.sock,server=on,wait=off',
      '-qmp', 'unix:/run/pw/qmp.sock,server=on,wait=off',
      '-qmp', 'unix:/run/pw/launch-qmp.sock,server=on,wait=off',
      '-action', 'reboot=shutdown,shutdown=pause',
      '-d', 'int,cpu_reset',
      '-D', '/run/pw/qemu.log',
      '-S',
      '-serial', 'mon:stdio',
    ]);
    expect(p.args).toEqual([...KERNEL, ...p.added]);
    expect(p).toMatchObject({ gdb: 'unix:/run/pw/gdb.sock', gdbAdded: true, qmp: '/run/pw/qmp.sock', control: '/run/pw/launch-qmp.sock', log: '/run/pw/qemu.log', stopAdded: true, consoleOnStdio: true });
    expect(p.notes).toEqual(["COM1 is in this terminal (-serial mon:stdio: Ctrl-A c for QEMU's monitor, Ctrl-A x quits QEMU)"]);
  });

  it('uses the user\'s gdbstub, in every form QEMU takes, and refuses one pagewalk cannot reach', () => {
    expect(plan(['-s']).gdb).toBe('127.0.0.1:1234');
    expect(plan(['-s']).added).not.toContain('-gdb');
    expect(plan(['-gdb', 'tcp::5555']).gdb).toBe('127.0.0.1:5555');
    expect(plan(['--gdb', 'tcp:0.0.0.0:5555,server=on']).gdb).toBe('127.0.0.1:5555');
    expect(plan(['-gdb', 'tcp:192.168.1.2:5555']).gdb).toBe('192.168.1.2:5555');
    expect(plan(['-gdb', 'unix:/tmp/g.sock,server=on,wait=off']).gdb).toBe('unix:/tmp/g.sock');
    expect(plan(['-chardev', 'socket,id=g,path=/tmp/c.sock,server=on,wait=off', '-gdb', 'chardev:g']).gdb).toBe('unix:/tmp/c.sock');
    expect(plan(['-chardev', 'socket,id=g,port=4444,server=on', '-gdb', 'chardev:g']).gdb).toBe('127.0.0.1:4444');
    expect(plan(['-gdb', 'tcp::1', '-s']).gdb).toBe('127.0.0.1:1234');
    expect(argsError(() => plan(['-gdb', 'stdio'])).message).toMatch(/^-gdb stdio: pagewalk cannot connect to a stdio gdbstub; use -gdb tcp::PORT/);
    expect(argsError(() => plan(['-gdb', 'none'])).message).toMatch(/launch attaches to one/);
    expect(argsError(() => plan(['-gdb', 'chardev:nope'])).message).toMatch(/no -chardev with id=nope/);
    expect(argsError(() => gdbEndpointOf('chardev:p', new Map([['p', new Map([['', 'pty']])]]))).message).toMatch(/a pty, not a socket/);
  });

  it('always adds its own QMP sockets, leaving the user\'s to their tools', () => {
    const p = plan(['-qmp', 'unix:/tmp/mine.sock,server=on,wait=off']);
    expect(p.added.filter((a) => a === '-qmp')).toHaveLength(2);
    expect(p.notes).toContain('your QMP (unix:/tmp/mine.sock,server=on,wait=off) is left to your tools: pagewalk uses its own');
  });

  it('adds only the post-mortem actions the user did not choose', () => {
    const action = (args: string[]) => {
      const a = plan(args).added;
      const i = a.indexOf('-action');
      return i < 0 ? null : a[i + 1];
    };
    expect(action([])).toBe('reboot=shutdown,shutdown=pause');
    expect(action(['-no-reboot'])).toBe('shutdown=pause');
    expect(action(['-no-shutdown'])).toBe('reboot=shutdown');
    expect(action(['-no-reboot', '-no-shutdown'])).toBeNull();
    expect(action(['-action', 'panic=pause'])).toBe('reboot=shutdown,shutdown=pause');
    expect(action(['-action', 'reboot=reset'])).toBe('shutdown=pause');
    expect(plan(['-action', 'reboot=reset']).notes).toContain('your -action reboot=reset: a triple fault resets the guest and its state is lost (reboot=shutdown,shutdown=pause keeps it)');
    expect(action(['-action', 'reboot=shutdown,shutdown=poweroff'])).toBeNull();
    expect(plan(['-action', 'reboot=shutdown', '-action', 'shutdown=poweroff']).notes).toContain('your -action shutdown=poweroff: a triple fault ends QEMU and its state is lost (shutdown=pause keeps it)');
  });

  it('adds the exception log unless the user chose one, keeping the user\'s -d and -D', () => {
    expect(plan([], false, '/var/log/q.log')).toMatchObject({ log: '/var/log/q.log' });
    expect(plan([], false, '/var/log/q.log').added).toEqual(expect.arrayContaining(['-D', '/var/log/q.log']));
    const mine = plan(['-d', 'int', '-D', '/tmp/x.log']);
    expect(mine.log).toBe('/tmp/x.log');
    expect(mine.added).not.toContain('-d');
    expect(mine.added).not.toContain('-D');
    expect(mine.notes).toContain('your -d int lacks cpu_reset: pagewalk explain-log needs int,cpu_reset');
    const onlyD = plan(['-D', '/tmp/x.log']);
    expect(onlyD.log).toBe('/tmp/x.log');
    expect(onlyD.added).toEqual(expect.arrayContaining(['-d', 'int,cpu_reset']));
    expect(onlyD.added).not.toContain('-D');
    const stderrLog = plan(['-d', 'guest_errors']);
    expect(stderrLog.log).toBeNull();
    expect(stderrLog.notes).toEqual(expect.arrayContaining(['your -d guest_errors lacks int and cpu_reset: pagewalk explain-log needs int,cpu_reset', "your -d without -D: QEMU's log goes to its console"]));
    expect(plan(['-accel', 'kvm']).notes).toContain('under KVM, -d int logs no guest exceptions (QEMU does not see them); use TCG for explain-log');
    expect(plan(['-enable-kvm']).notes.some((n) => n.startsWith('under KVM'))).toBe(true);
    expect(plan(['-accel', 'tcg']).notes.some((n) => n.startsWith('under KVM'))).toBe(false);
  });

  it('adds -S only to attach before the guest runs, and not when the user froze it already', () => {
    expect(plan([], true).stopAdded).toBe(true);
    expect(plan(['-S'], true).stopAdded).toBe(false);
    expect(plan(['-S'], true).added).not.toContain('-S');
    expect(plan([], false).stopAdded).toBe(false);
  });

  it('puts COM1 in the terminal only when the user chose nothing for it and stdio is free', () => {
    const serial = (args: string[]) => plan(args).added.includes('-serial');
    expect(serial([])).toBe(true);
    expect(serial(['-nographic'])).toBe(false);
    expect(plan(['-nographic']).consoleOnStdio).toBe(true);
    expect(serial(['-serial', 'stdio'])).toBe(false);
    expect(plan(['-serial', 'stdio']).consoleOnStdio).toBe(true);
    expect(plan(['-serial', 'file:/tmp/s.txt'])).toMatchObject({ consoleOnStdio: false });
    expect(plan(['-serial', 'file:/tmp/s.txt']).notes).toContain('the serial port goes where your -serial file:/tmp/s.txt sends it, not to this terminal');
    expect(serial(['-monitor', 'stdio'])).toBe(false);
    expect(plan(['-monitor', 'stdio']).notes).toContain('stdio is already taken by your options: no serial console added');
    expect(serial(['-chardev', 'stdio,id=c', '-device', 'virtconsole,chardev=c'])).toBe(false);
    expect(serial(['-chardev', 'pty,id=c', '-device', 'isa-serial,chardev=c'])).toBe(false);
    expect(serial(['-display', 'curses'])).toBe(false);
    expect(serial(['-display', 'none'])).toBe(true);
  });

  it('refuses -daemonize, which would leave the terminal', () => {
    expect(argsError(() => plan(['-daemonize'])).message).toMatch(/^-daemonize:/);
  });
});
