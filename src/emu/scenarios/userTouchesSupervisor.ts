/**
 * `user-touches-supervisor`: ring-3 code reads a supervisor page.
 */
import { Assembler, mem, qword, ref } from '../../asm/index.js';
import { ax, eax, rax, rdi, rsi } from '../../asm/registers.js';
import { KERNEL_SELECTORS } from './kernel/interrupts.js';
import { announceSwitch, buildKernel } from './kernel/kernel.js';
import { limineHandover } from './loader.js';
import type { Scenario } from './scenario.js';

/** RFLAGS for user mode: interrupts stay off (the machine has no interrupt source anyway). */
const USER_RFLAGS = 0x2;
/** Where the kernel maps the user program and its stack. */
const USER_TEXT_VA = 0x400000n;
const USER_STACK_VA = 0x7fffffffe000n;

/** The user program, linked at its user address: it reads through the pointer it was given in RDI. */
function userProgram(): Uint8Array {
  const a = new Assembler(64);
  a.label('user_entry').mov(rax, qword(rdi)).label('user_spin').jmp('user_spin');
  return a.assemble(USER_TEXT_VA).bytes;
}

/** User code reading kernel data: #PF with U=1, delivered on the TSS's RSP0 stack. */
export const userTouchesSupervisor: Scenario = {
  name: 'user-touches-supervisor',
  title: 'ring-3 code touches a supervisor page: #PF with U=1 on the RSP0 stack',
  description:
    'After switching to its own tables the kernel maps a user program at 0x400000 and a user stack ' +
    'below 0x7ffffffff000 (U/S set), sets up a TSS (RSP0 = the top of its own stack), loads TR, and ' +
    'enters ring 3 with iretq (user code 0x23, user data 0x1b), handing the program a pointer in RDI ' +
    'that points into kernel memory. The program reads through it: the page is present but its U/S ' +
    "bit is clear, so the read faults with #PF error code 0x5 (present, user-mode access; a read), " +
    "CR2 = the kernel variable's address, RIP = 0x400000. The CPU takes RSP0 from the TSS, pushes the " +
    "user SS:RSP, and the kernel's #PF handler reports the fault and halts. `pagewalk walk --user` " +
    'shows U/S clear at the PTE (U/S is ANDed over all levels: the tables above allow user access, ' +
    'the leaf does not).',
  outcome: {
    kind: 'fault',
    first: { vector: 14, errorCode: 0x5, cr2: 0xffffffff80002148n, rip: 0x400000n },
  },
  build: () =>
    limineHandover({
      kernel: buildKernel({
        name: 'user-touches-supervisor',
        extraSections: [
          {
            label: 'sec_user_text',
            write: false,
            execute: true,
            user: true,
            mapAt: USER_TEXT_VA,
            emit: (a) => a.db(userProgram()),
          },
          { label: 'sec_user_stack', write: true, execute: false, user: true, mapAt: USER_STACK_VA, emit: (a) => a.zero(0x1000) },
        ],
        afterSwitch: (a) =>
          announceSwitch(a)
            .lea(rsi, mem('msg_user'))
            .call('puts')
            .lea(rax, mem('stack_top'))
            .mov(qword(ref('tss', 4)), rax) // RSP0
            .mov(eax, KERNEL_SELECTORS.tss)
            .ltr(ax)
            .push(KERNEL_SELECTORS.userData)
            .mov(rax, USER_STACK_VA + 0x1000n)
            .push(rax)
            .push(USER_RFLAGS)
            .push(KERNEL_SELECTORS.userCode)
            .mov(rax, USER_TEXT_VA)
            .push(rax)
            .lea(rdi, mem('kernel_secret')) // the pointer the user program is handed
            .label('enter_user')
            .iretq(),
        rodata: (a) => a.label('msg_user').db('kernel: entering user mode\n', 0),
        data: (a) => a.align(8).label('kernel_secret').dq(0x5ec2e7),
      }),
    }),
};
