#!/usr/bin/env node
// The emulated Pico W as a process: `node src/cli.js --flash FILE [options]` (see usage()).
// stdout carries the board's UART0 bytes and nothing else; the emulator's own notes go to stderr,
// prefixed `emu:`. A power cut is a SIGKILL of this process at any moment: every flash erase and
// program reaches the flash file before the emulated code goes on.
import { copyFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { Board, Stop } from './board.js';
import { loadBootrom, romFunction } from './bootrom.js';
import { findFunction } from './elf.js';
import { FLASH_SIZE, FlashFile } from './flash.js';
import { parseDeviceId } from './qspi.js';
import { LineSplitter } from './uart.js';

/** Exit codes (stderr says which). */
export const Exit = Object.freeze({
  Until: 0, // --until matched a console line
  Usage: 2,
  MaxBoots: 3, // a reset would start boot --max-boots + 1
  VirtualTime: 4, // --max-virtual-s of emulated time ran out
  Idle: 5, // the CPU sleeps with nothing to wake it (a halted board)
  Stopped: 6, // --stop-at reached with --on-stop exit
  Error: 7, // an emulator failure (a message names it)
  Orphaned: 8, // --exit-with-stdin: stdin closed
  WallTime: 124, // --timeout-s of real time ran out
});

const BATCH = 200_000; // instructions between checks of the clocks (and event-loop turns)

function usage() {
  return `usage: node src/cli.js --flash FILE [options]
  --flash FILE          flash contents, read at start and written through (NOR semantics);
                        created erased when missing
  --golden FILE         first overwrite the flash file with this image, padded with 0xFF to 2 MiB
  --press-recovery      hold the recovery button (GP15) low from power-on
  --device-id HEX16     the flash chip's unique id (default: rp2040js's zeros)
  --elf FILE            ELF(s) whose symbols --stop-at may name (repeatable)
  --stop-at A[,B...]    waypoints, each a function name (ota_core::state::store), an address
                        (0x10001234) or a ROM flash routine (rom:RE erase, rom:RP program): stop
                        the CPU before the last one, reached after the ones before it; then print
                        'emu: stopped at ...' and wait for the power cut (SIGKILL)
  --on-stop exit        exit ${Exit.Stopped} at the stop instead of waiting
  --until REGEX         exit 0 once a console line matches
  --max-boots N         exit ${Exit.MaxBoots} instead of starting boot N+1 (default 20)
  --max-virtual-s S     exit ${Exit.VirtualTime} after S seconds of emulated time, all boots (default 300)
  --timeout-s S         exit ${Exit.WallTime} after S seconds of real time (default 300), also
                        while stopped at --stop-at
  --exit-with-stdin     exit ${Exit.Orphaned} as soon as stdin closes (a parent that holds a pipe
                        to it died): no emulator outlives the check that started it`;
}

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      flash: { type: 'string' },
      golden: { type: 'string' },
      'press-recovery': { type: 'boolean', default: false },
      'device-id': { type: 'string' },
      elf: { type: 'string', multiple: true, default: [] },
      'stop-at': { type: 'string' },
      'on-stop': { type: 'string', default: 'wait' },
      until: { type: 'string' },
      'max-boots': { type: 'string', default: '20' },
      'max-virtual-s': { type: 'string', default: '300' },
      'timeout-s': { type: 'string', default: '300' },
      'exit-with-stdin': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  if (!values.flash) throw new UsageError('--flash FILE is required');
  if (!['wait', 'exit'].includes(values['on-stop'])) throw new UsageError(`--on-stop ${values['on-stop']}: wait or exit`);
  const number = (name) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} ${values[name]}: expected a positive number`);
    return n;
  };
  return {
    flash: values.flash,
    golden: values.golden,
    pressRecovery: values['press-recovery'],
    deviceId: values['device-id'] ? parseDeviceId(values['device-id']) : null,
    elfs: values.elf,
    stopAt: values['stop-at'] ? values['stop-at'].split(',') : [],
    onStop: values['on-stop'],
    until: values.until ? new RegExp(values.until) : null,
    maxBoots: number('max-boots'),
    maxVirtualNs: number('max-virtual-s') * 1e9,
    timeoutMs: number('timeout-s') * 1000,
    exitWithStdin: values['exit-with-stdin'],
  };
}

class UsageError extends Error {}

/** A --stop-at waypoint: its label and the instruction addresses that reach it. */
function waypoint(spec, elfs, bootrom) {
  if (/^0x[0-9a-f]+$/i.test(spec)) return { label: spec, addrs: new Set([Number(spec) & ~1]) };
  if (spec === 'rom:RE' || spec === 'rom:RP') {
    // The board runs these ROM routines itself; the waypoint fires before it does.
    return { label: spec, addrs: new Set([romFunction(bootrom.bytes, spec.slice(4))]) };
  }
  if (elfs.length === 0) throw new UsageError(`--stop-at ${spec}: give the ELF it is in with --elf`);
  const hits = findFunction(elfs, spec);
  return { label: spec, addrs: new Set(hits.map((h) => h.addr)), hits };
}

function note(msg) {
  process.stderr.write(`emu: ${msg}\n`);
}

async function main() {
  const args = parse(process.argv.slice(2));
  const started = Date.now();
  if (args.exitWithStdin) {
    process.stdin.on('close', () => {
      note('stdin closed: the process that started this emulator is gone');
      process.exit(Exit.Orphaned);
    });
    process.stdin.resume();
  }
  const bootrom = loadBootrom();
  if (args.golden) {
    const len = readFileSync(args.golden).length;
    if (len > FLASH_SIZE) throw new Error(`${args.golden}: ${len} bytes, larger than the 2 MiB flash`);
    copyFileSync(args.golden, args.flash);
  }
  const flash = new FlashFile(args.flash);
  const waypoints = args.stopAt.map((s) => waypoint(s, args.elfs, bootrom));
  for (const w of waypoints) {
    const where = [...w.addrs].map((a) => `0x${a.toString(16)}`).join(' ');
    note(`waypoint ${w.label} at ${where}`);
  }

  let outcome = null;
  const finish = (code, msg) => {
    if (outcome === null) outcome = { code, msg };
    board.end();
  };
  const lines = new LineSplitter((line) => {
    if (args.until && args.until.test(line)) finish(Exit.Until, `console matched /${args.until.source}/`);
  });
  const board = new Board({
    bootrom,
    flash,
    deviceId: args.deviceId,
    recoveryPressed: args.pressRecovery,
    waypoints,
    onUartByte: (b) => {
      process.stdout.write(Buffer.of(b));
      lines.push(b);
    },
    onReset: ({ boot, cause }) => {
      if (boot > args.maxBoots) finish(Exit.MaxBoots, `boot ${boot} (${cause}) exceeds --max-boots ${args.maxBoots}`);
      else note(`boot ${boot}: ${cause}`);
    },
    report: note,
  });

  const ms = () => `${(board.elapsedNs / 1e6).toFixed(1)} ms`;
  board.powerOn();
  for (;;) {
    const stop = board.run(BATCH);
    if (outcome) break;
    if (stop === Stop.Waypoint) {
      const w = waypoints[waypoints.length - 1];
      const pc = board.chip.core.registers[15];
      note(`stopped at ${w.label} (pc 0x${pc.toString(16)}) in boot ${board.boot} after ${ms()}`);
      if (args.onStop === 'exit') finish(Exit.Stopped, 'stopped');
      else {
        // Frozen until the power cut (SIGKILL), or the wall-time limit.
        await new Promise((r) => setTimeout(r, Math.max(0, args.timeoutMs - (Date.now() - started))));
        finish(Exit.WallTime, `stopped, and no power cut came within --timeout-s ${args.timeoutMs / 1000}`);
      }
      break;
    }
    if (stop === Stop.Idle) {
      const pc = board.chip.core.registers[15];
      const where = pc < 0x4000 ? ' in the boot ROM (USB boot: no valid boot2 at flash offset 0?)' : '';
      finish(Exit.Idle, `boot ${board.boot}: the CPU sleeps at pc 0x${pc.toString(16)}${where} with no timer armed (a halted board)`);
      break;
    }
    if (board.elapsedNs > args.maxVirtualNs) finish(Exit.VirtualTime, `${args.maxVirtualNs / 1e9} s of emulated time ran out`);
    else if (Date.now() - started > args.timeoutMs) finish(Exit.WallTime, `${args.timeoutMs / 1000} s of real time ran out`);
    if (outcome) break;
    await new Promise((r) => setImmediate(r));
  }
  flash.close();
  const { code, msg } = outcome;
  note(`${msg}; boots ${board.boot}, emulated ${ms()}, real ${Date.now() - started} ms, flash ops ${flash.ops.erase} erase / ${flash.ops.program} program`);
  if (lines.rest) note(`an unfinished console line: ${JSON.stringify(lines.rest)}`);
  await new Promise((r) => process.stdout.write('', r));
  process.exit(code);
}

main().catch((e) => {
  if (e instanceof UsageError || e?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    process.stderr.write(`emu: ${e.message}\n${usage()}\n`);
    process.exit(Exit.Usage);
  }
  process.stderr.write(`emu: error: ${e.message}\n`);
  process.exit(Exit.Error);
});
