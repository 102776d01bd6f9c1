/**
 * `pagewalk explain-log FILE|-`: a QEMU `-d int,cpu_reset` log explained: each exception (the error
 * code bit by bit, CR2, RIP, CR3), the chain to a double or triple fault, a reset loop summarised,
 * and the outcome. The log is streamed (hundreds of MB are fine). With a target (--dump, --example,
 * --gdb, --qmp) each #PF's CR2 is also walked in the CR3 the log shows, and the tables' verdict given.
 * With --elf, RIP and CR2 are also given as symbols. Exit status: 1 when the log shows a triple
 * fault or an unhandled fault, 0 otherwise, 2 for input that is not a QEMU log or cannot be read.
 */
import { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { detailOf, type LogChain, type LogExplanation, type LoggedException } from '../../faults/explainLog.js';
import type { PagingOverride } from '../../faults/logAgainstTables.js';
import { explainLogJson } from '../../json/explainLog.js';
import { hex } from '../../paging/addr.js';
import type { CpuFeatures } from '../../paging/mode.js';
import { explainQemuLog, logTables, type LogTables } from '../../report/explainLog.js';
import { errorCodeLines } from '../../report/fault.js';
import { loadElfSymbols } from '../../target/elfSymbols.js';
import { withTargetOptions, type CliRun, type CommonOptions } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { parseNumber, parseSmall } from '../numbers.js';
import { Output, type Colors } from '../output.js';
import { renderWalk } from '../renderWalk.js';
import { openTarget } from '../session.js';

/** How many other lines (guest output, messages) the text output lists. */
const SHOWN_OTHER_LINES = 5;

/** Turns an address into `name+0xoff` with --elf, or undefined. */
type Symbolize = (va: bigint) => string | undefined;

/** Builds the `explain-log` command. */
export function explainLogCommand(run: CliRun): Command {
  return withTargetOptions(
    new Command('explain-log')
      .description("explain a QEMU -d int,cpu_reset log: each exception, its error code, the chain to a double or triple fault, a reset loop; with a target, walk each #PF's CR2 in the log's CR3")
      .argument('<file>', "the log (QEMU's -D FILE, or its stderr), or - for standard input"),
  ).action(async (file: string, opts: CommonOptions) => {
    const out = new Output(run.io, opts.json === true);
    for (const [given, option] of [
      [opts.mode, '--mode'],
      [opts.pkru, '--pkru'],
    ] as const) {
      if (given !== undefined) throw new UsageError(`explain-log takes the registers from the log: ${option} does not apply (override one with --cr0, --cr3, --cr4 or --efer)`);
    }
    if (!targetGiven(opts)) {
      const walkOnly = (['cr0', 'cr3', 'cr4', 'efer', 'maxphyaddr'] as const).find((k) => opts[k] !== undefined);
      if (walkOnly) throw new UsageError(`--${walkOnly} is for walking each #PF in the tables of a target: pass --dump FILE, --example, --gdb HOST:PORT or --qmp PATH with it`);
    }
    const symbols = opts.elf ? await loadElfSymbols(opts.elf) : null;
    const sym: Symbolize | undefined = symbols ? (va) => symbols.symbolize(va) : undefined;
    const name = file === '-' ? 'standard input' : file;
    const explanation = await explainQemuLog(file === '-' ? (run.io.stdin ?? process.stdin) : createReadStream(file), name);
    const tables = targetGiven(opts) ? await checkAgainstTarget(explanation, opts, out) : null;
    if (explanation.danger) run.status = Math.max(run.status, EXIT.DANGER);
    if (out.json) {
      out.jsonValue(explainLogJson(explanation, tables?.checks ?? new Map(), sym));
      return;
    }
    render(out, basename(name), explanation, tables, sym);
  });
}

function targetGiven(o: CommonOptions): boolean {
  return o.dump !== undefined || o.example === true || o.gdb !== undefined || o.qmp !== undefined;
}

async function checkAgainstTarget(x: LogExplanation, opts: CommonOptions, out: Output): Promise<LogTables> {
  const target = await openTarget(opts);
  try {
    const known = await target.cpuFeatures();
    const features: CpuFeatures = { ...known };
    if (opts.maxphyaddr !== undefined) features.maxPhyAddr = parseSmall(opts.maxphyaddr, '--maxphyaddr', 32, 52);
    else if (known.maxPhyAddr === undefined) out.note("MAXPHYADDR is unknown: assuming 52 (pass --maxphyaddr N, e.g. 40 for QEMU's default CPU)");
    if (opts['1gPages'] === false) features.gbPages = false;
    const override: PagingOverride = {};
    for (const k of ['cr0', 'cr3', 'cr4', 'efer'] as const) {
      if (opts[k] !== undefined) override[k] = parseNumber(opts[k]!, `--${k}`);
    }
    if (override.cr3 !== undefined) out.note(`walking with --cr3 ${hex(override.cr3)} instead of the CR3 the log shows`);
    return await logTables(target, x, features, override);
  } finally {
    await target.close();
  }
}

const OUTCOME_WORDS: Record<LogExplanation['outcome'], string> = {
  'no-faults': 'no faults',
  handled: 'handled',
  'fault-loop': 'FAULT LOOP',
  'double-fault': 'DOUBLE FAULT',
  'cut-short': 'cut short',
  'triple-fault': 'TRIPLE FAULT',
  'reset-loop': 'RESET LOOP',
};

function render(out: Output, name: string, x: LogExplanation, tables: LogTables | null, sym: Symbolize | undefined): void {
  const c = out.c;
  const n = x.counts;
  const plural = (k: number, w: string) => `${k} ${w}${k === 1 ? '' : 's'}`;
  const facts = [plural(n.lines, 'line'), plural(n.exceptions, 'exception')];
  if (n.tripleFaults > 0) facts.push(plural(n.tripleFaults, 'triple fault'));
  if (n.softwareInterrupts > 0) facts.push(plural(n.softwareInterrupts, 'software interrupt'));
  if (n.hardwareInterrupts > 0) facts.push(plural(n.hardwareInterrupts, 'hardware interrupt'));
  if (n.cpuResets > 0) facts.push(plural(n.cpuResets, 'CPU reset'));
  out.line(c.bold(`QEMU log ${name}: `) + facts.join(', '));
  x.chains.forEach((chain, i) => renderChain(out, chain, i, tables, sym));
  if (x.droppedChains > 0) out.line(c.dim(`\n... and ${plural(x.droppedChains, 'more distinct chain')} not shown (see --json for the counts)`));
  out.line();
  const danger = x.danger;
  const word = OUTCOME_WORDS[x.outcome];
  out.line(c.bold('Outcome: ') + (danger ? c.red(c.bold(word)) : x.outcome === 'cut-short' ? c.yellow(word) : c.green(word)));
  out.line(`  ${x.summary}`);
  if (x.notes.length > 0) {
    out.line();
    out.line(c.bold('Notes:'));
    for (const note of x.notes) out.line(`  - ${note}`);
  }
  if (n.unrecognised > 0) {
    out.line();
    out.line(c.bold(`Other lines: `) + `${n.unrecognised} (guest output, QEMU messages, or lines cut short), not from QEMU's -d logging`);
    for (const u of x.unrecognised.slice(0, SHOWN_OTHER_LINES)) {
      const text = u.text.length > 100 ? `${u.text.slice(0, 100)}...` : u.text;
      out.line(c.dim(`  line ${u.line}${u.cut ? ' (cut: the log ends inside it)' : ''}: ${JSON.stringify(text)}`));
    }
    if (n.unrecognised > SHOWN_OTHER_LINES) out.line(c.dim(`  ... (see --json for the first ${x.unrecognised.length})`));
  }
}

function renderChain(out: Output, chain: LogChain, index: number, tables: LogTables | null, sym: Symbolize | undefined): void {
  const c = out.c;
  out.line();
  const seen = chain.occurrences > 1 ? `, seen ${chain.occurrences} times (the last from line ${chain.lastOccurrenceLine})` : '';
  out.line(c.bold(`Chain ${index + 1}, lines ${chain.firstLine}-${chain.lastLine}${seen}: `) + chain.oneLine);
  chain.links.forEach((l, i) => renderLink(out, l, i, tables, sym));
  if (chain.end === 'triple-fault') {
    out.line(
      `  ${c.red(c.bold('=> triple fault'))}${chain.tripleFaultLine !== null ? ` (line ${chain.tripleFaultLine})` : ''}: ` +
        (chain.resetAfter ? 'QEMU reset the machine' : 'the CPU shut down; QEMU paused or exited'),
    );
  } else if (chain.end === 'cut-short') {
    out.line(`  ${c.yellow('=> the log ends here')}: what happened next is not in it`);
  }
}

function renderLink(out: Output, l: LoggedException, i: number, tables: LogTables | null, sym: Symbolize | undefined): void {
  const c = out.c;
  const tag = l.kind === 'exception' ? '' : c.dim(` (${l.kind.replace('-', ' ')})`);
  out.line(`  ${i + 1}. ${c.bold(l.name)} ${l.longName}${tag}, line ${l.line}`);
  const named = (va: bigint) => {
    const n = sym?.(va);
    return n ? ` <${n}>` : '';
  };
  const where = [`RIP ${hex(l.rip)}${named(l.rip)}`, `CPL ${l.cpl}${l.mode ? `, ${l.mode}` : ''}`];
  if (l.vector === 14 && l.cr2 !== null) where.push(`CR2 ${c.bold(hex(l.cr2))}${named(l.cr2)}`);
  if (l.paging && (l.paging.cr0 & 0x80000000n) !== 0n) where.push(`CR3 ${hex(l.paging.cr3)}`);
  else if (l.paging) where.push('paging off');
  out.line(`     ${where.join('   ')}`);
  if (l.decoded) {
    out.line(`     error code ${c.bold(hex(l.decoded.code))}`);
    for (const line of errorCodeLines(c, l.decoded, '       ')) out.line(line);
    for (const hint of l.hints) out.line(`     ${hint}`);
  } else {
    out.line(`     ${detailOf(l)}`);
  }
  const f = l.deliveryFailure;
  if (f) {
    out.line(`     ${c.red('delivery failed')}: ${f.why}`);
    out.line(`       ${f.rule}`);
  }
  renderTables(out, l, tables, c, sym);
}

function renderTables(out: Output, l: LoggedException, tables: LogTables | null, c: Colors, sym: Symbolize | undefined): void {
  if (!tables) return;
  const skipped = tables.skipped.get(l);
  if (skipped) {
    out.line(`     ${c.dim(`not walked: ${skipped}`)}`);
    return;
  }
  const check = tables.checks.get(l);
  if (!check) return;
  out.line('     The tables now:');
  for (const line of renderWalk(check.walk, c, sym)) out.line(`       ${line}`);
  out.line(`     ${check.agrees ? c.green('✓ ') : c.yellow('? ')}${check.explanation}`);
}
