#!/usr/bin/env node
// The boot-path checks of the real Pico W binaries in the emulator (check.sh runs this).
//
//   node src/check.js --artifacts DIR [--bootloader BIN] [--only a,c] [--work DIR]
//
// DIR holds what ci.sh wrote (bootloader.bin/.elf, app-a.bin, app-b.bin). Each check builds its
// flash file from them, runs the emulator (src/cli.js) as a child process, prints the board's
// console lines, and requires every line to be a CONSOLE.md line. A power cut is a SIGKILL of
// that process. Prints one result line per check with its wall time, then `N passed, M failed`;
// exits 1 when a check failed, 2 on a usage error.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Grammar } from './console.js';
import { ImageMaker, MAP, clearState, putSlot, putState, readState } from './images.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, 'cli.js');
const BOARD_DIR = join(here, '..', '..'); // boards/pico-w
const CONSOLE_MD = join(BOARD_DIR, '..', '..', 'CONSOLE.md');
const DEVICE_ID = '00000000c0ffee01';
const BANNER = (reset) => `boot: otarig-boot board=pico-w device=pico-${DEVICE_ID} reset=${reset}`;

class CheckFailed extends Error {}

/** Live emulator processes: killed on any exit of this one. */
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`check: ${sig}, stopping the emulators\n`);
    process.exit(130);
  });
}

/**
 * Runs the emulator on `flash` until `until` matches a console line (or a stop waypoint is
 * reached, where it cuts the power: SIGKILL). Returns the console lines and how it ended.
 */
function emulate(ctx, { flash, until, stopAt, pressRecovery = false, maxBoots = 2, timeoutS = 60 }) {
  const args = [CLI, '--exit-with-stdin', '--flash', flash, '--device-id', DEVICE_ID, '--max-boots', String(maxBoots), '--timeout-s', String(timeoutS)];
  if (until) args.push('--until', until);
  if (stopAt) args.push('--elf', ctx.bootloaderElf, '--stop-at', stopAt);
  if (pressRecovery) args.push('--press-recovery');
  ctx.out(`    $ emu ${args.slice(2).map((a) => a.replace(ctx.work + '/', '')).join(' ')}`);
  return new Promise((resolve, reject) => {
    // stdin is a pipe the child watches: if this process dies, so does the emulator.
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const lines = [];
    let out = '';
    let err = '';
    let cut = false;
    // The child has its own --timeout-s; this is the backstop if it hangs anyway.
    const backstop = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 15) * 1000);
    child.stdout.on('data', (d) => {
      out += d.toString('latin1');
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl).replace(/\r$/, '');
        out = out.slice(nl + 1);
        lines.push(line);
        ctx.out(`    | ${line}`);
      }
    });
    child.stderr.on('data', (d) => {
      err += d.toString();
      if (stopAt && !cut && /^emu: stopped at /m.test(err)) {
        cut = true;
        ctx.out(`    ~ ${/^emu: (stopped at .*)$/m.exec(err)[1]}: power cut (SIGKILL)`);
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(backstop);
      children.delete(child);
      if (out) ctx.out(`    | ${out}   (unfinished line)`);
      const emuNotes = err.split('\n').filter((l) => l.startsWith('emu: ') && !l.startsWith('emu: rp2040js'));
      resolve({ lines, partial: out, code, signal, cut, stderr: err, last: emuNotes[emuNotes.length - 1] ?? '' });
    });
  });
}

/**
 * Every complete console line must be one of CONSOLE.md's; and the emulator must not have met
 * an instruction it cannot execute (the run would prove nothing).
 */
function grammarCheck(ctx, run) {
  const gap = /^emu: rp2040js .*(not implemented|Unknown instruction|invalid opcode).*$/im.exec(run.stderr);
  if (gap) throw new CheckFailed(`the emulator cannot run this firmware: ${gap[0]}`);
  for (const line of run.lines) {
    if (!ctx.grammar.match(line)) {
      throw new CheckFailed(`console line ${JSON.stringify(line)} is not a ${ctx.grammar.path} line`);
    }
  }
}

/** The run ended because --until matched (exit 0), and printed exactly `want`. */
function expectLines(ctx, run, want, what) {
  grammarCheck(ctx, run);
  if (run.code !== 0) {
    throw new CheckFailed(`${what}: the emulator exited ${run.code ?? run.signal} (${run.last.replace(/^emu: /, '')})`);
  }
  const got = run.lines;
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) {
      throw new CheckFailed(
        `${what}: console line ${i + 1} is ${JSON.stringify(got[i] ?? '(none)')}, expected ${JSON.stringify(want[i] ?? '(none)')}`,
      );
    }
  }
}

/** The run was cut at its stop waypoint (SIGKILL from here), after printing exactly `want`. */
function expectCut(ctx, run, want, what) {
  grammarCheck(ctx, run);
  if (!run.cut || run.signal !== 'SIGKILL') {
    throw new CheckFailed(`${what}: never reached its cut point (exit ${run.code ?? run.signal}: ${run.last.replace(/^emu: /, '')})`);
  }
  if (JSON.stringify(run.lines) !== JSON.stringify(want)) {
    throw new CheckFailed(`${what}: printed ${JSON.stringify(run.lines)} before the cut, expected ${JSON.stringify(want)}`);
  }
}

function sameBytes(a, b, what) {
  if (Buffer.compare(a, b) !== 0) throw new CheckFailed(what);
}

/** golden + the valid v2.0.0 slot-B image, staged for a trial boot (records seq 2 and 3). */
function stagedTrial(ctx, slotB) {
  const flash = Buffer.from(ctx.golden);
  putSlot(flash, 1, slotB);
  clearState(flash);
  putState(flash, { seq: 2, active: 0 }); // the older record: v1.0.0 confirmed in A
  putState(flash, { seq: 3, active: 1, trial: true, attempts: 0, previous: 0 }); // the app staged B
  return flash;
}

const CHECKS = [
  {
    id: 'a',
    title: 'golden image boots to the app',
    async run(ctx) {
      const flash = ctx.file('a.flash', ctx.golden);
      const run = await emulate(ctx, { flash, until: '^app: .* starting' });
      expectLines(
        ctx,
        run,
        [BANNER('power-on'), 'boot: slot=a version=1.0.0 state=confirmed', 'app: v1.0.0 starting drill=none'],
        'golden boot',
      );
    },
  },
  {
    id: 'b',
    title: 'power cut while the state record is written, then a clean boot',
    async run(ctx) {
      const staged = stagedTrial(ctx, ctx.v2b);
      const flash = ctx.file('b.flash', staged);
      const trialBoot = [
        BANNER('power-on'),
        'boot: trial version=2.0.0 attempt=1/3',
        'boot: slot=b version=2.0.0 state=trial',
        'app: v2.0.0 starting drill=none',
      ];
      const [copy0, copy1] = MAP.state; // the new record (seq 4) goes to copy 0
      // Cut 1: at the entry of ota_core::state::store (the trial count about to be written).
      let run = await emulate(ctx, { flash, stopAt: 'ota_core::state::store' });
      expectCut(ctx, run, [BANNER('power-on')], 'cut at state::store entry');
      sameBytes(readFileSync(flash), staged, 'cut at state::store entry: the flash changed before the store began');
      // Cut 2: inside store, after its sector erase and before the record is programmed.
      run = await emulate(ctx, { flash, stopAt: 'ota_core::state::store,rom:RP' });
      expectCut(ctx, run, [BANNER('power-on')], 'cut between erase and program');
      const torn = readFileSync(flash);
      if (torn.subarray(copy0, copy0 + 0x1000).some((b) => b !== 0xff)) {
        throw new CheckFailed('cut between erase and program: state copy 0 is not erased; the cut was not where intended');
      }
      sameBytes(
        torn.subarray(copy1, copy1 + 0x1000),
        staged.subarray(copy1, copy1 + 0x1000),
        'cut between erase and program: state copy 1 changed',
      );
      const inCharge = readState(torn);
      if (inCharge?.seq !== 3 || inCharge.attempts !== 0) {
        throw new CheckFailed(`after the cuts the state record in charge is ${JSON.stringify(inCharge)}, not the staged one (seq 3)`);
      }
      // Power back: the record in charge is still the staged one, so this is trial boot 1.
      run = await emulate(ctx, { flash, until: '^app: .* starting' });
      expectLines(ctx, run, trialBoot, 'boot after the cuts');
      const after = readState(readFileSync(flash));
      const want = { seq: 4, active: 1, trial: true, attempts: 1, previous: 0 };
      if (JSON.stringify(after) !== JSON.stringify(want)) {
        throw new CheckFailed(`after the clean boot the state record is ${JSON.stringify(after)}, expected ${JSON.stringify(want)}`);
      }
    },
  },
  {
    id: 'c',
    title: 'a staged slot-B image with a bad signature is refused, slot A boots',
    async run(ctx) {
      const bad = Buffer.from(ctx.v2b);
      bad[192 + 17] ^= 0x01; // one bit of the ed25519 signature (header bytes 192..256)
      const flash = ctx.file('c.flash', stagedTrial(ctx, bad));
      const run = await emulate(ctx, { flash, until: '^app: .* starting' });
      expectLines(
        ctx,
        run,
        [
          BANNER('power-on'),
          'boot: trial version=2.0.0 attempt=1/3',
          'boot: refuse slot=b reason=bad-signature',
          'boot: revert to=1.0.0 reason=bad-image',
          'boot: slot=a version=1.0.0 state=confirmed',
          'app: v1.0.0 starting drill=none',
        ],
        'boot with a badly signed slot B',
      );
    },
  },
  {
    id: 'd',
    title: 'a trial image that never confirms is reverted after 3 attempts',
    async run(ctx) {
      const flash = ctx.file('d.flash', stagedTrial(ctx, ctx.v2b));
      const run = await emulate(ctx, { flash, until: '^app: v1\\.0\\.0 starting', maxBoots: 5, timeoutS: 240 });
      const attempt = (n, reset) => [
        ...(reset === 'watchdog' ? ['watchdog: expired'] : []),
        BANNER(reset),
        `boot: trial version=2.0.0 attempt=${n}/3`,
        'boot: slot=b version=2.0.0 state=trial',
        'app: v2.0.0 starting drill=none',
      ];
      expectLines(
        ctx,
        run,
        [
          ...attempt(1, 'power-on'),
          ...attempt(2, 'watchdog'),
          ...attempt(3, 'watchdog'),
          'watchdog: expired',
          BANNER('watchdog'),
          'boot: revert to=1.0.0 reason=trial-exhausted',
          'boot: slot=a version=1.0.0 state=confirmed',
          'app: v1.0.0 starting drill=none',
        ],
        'trial boots until the revert',
      );
    },
  },
  {
    id: 'e',
    title: 'the recovery button (GP15 low) runs the factory reset',
    async run(ctx) {
      const staged = Buffer.from(ctx.golden);
      putSlot(staged, 0, ctx.v2a); // v2.0.0 runs from A; the factory region keeps v1.0.0
      clearState(staged);
      putState(staged, { seq: 1, active: 0 });
      const flash = ctx.file('e.flash', staged);
      // Button released (GP15 high): the board runs v2.0.0 and leaves the flash alone.
      let run = await emulate(ctx, { flash, until: '^app: .* starting' });
      expectLines(
        ctx,
        run,
        [BANNER('power-on'), 'boot: slot=a version=2.0.0 state=confirmed', 'app: v2.0.0 starting drill=none'],
        'boot without the button',
      );
      // Button held at power-on.
      run = await emulate(ctx, { flash, until: '^app: .* starting', pressRecovery: true });
      expectLines(
        ctx,
        run,
        [
          BANNER('power-on'),
          'boot: factory reset version=1.0.0',
          'boot: slot=a version=1.0.0 state=confirmed',
          'app: v1.0.0 starting drill=none',
        ],
        'boot with the button held',
      );
      const slotA = readFileSync(flash).subarray(MAP.slots[0], MAP.slots[0] + ctx.v1a.length);
      sameBytes(slotA, ctx.v1a, 'after the factory reset, slot A does not hold the factory image');
    },
  },
];

/** A rig binary for the signature cross-check: $OTARIG_RIG, or release/rig beside pico-w/. */
function findRig(artifacts) {
  if (process.env.OTARIG_RIG) {
    if (!existsSync(process.env.OTARIG_RIG)) throw new Error(`OTARIG_RIG=${process.env.OTARIG_RIG}: no such file`);
    return process.env.OTARIG_RIG;
  }
  const beside = join(artifacts, '..', 'release', 'rig');
  return existsSync(beside) ? beside : null;
}

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      artifacts: { type: 'string' },
      bootloader: { type: 'string' },
      only: { type: 'string' },
      work: { type: 'string' },
    },
  });
  if (!values.artifacts) throw new Error('--artifacts DIR (ci.sh output) is required');
  for (const f of ['bootloader.bin', 'bootloader.elf', 'app-a.bin', 'app-b.bin']) {
    if (!existsSync(join(values.artifacts, f))) throw new Error(`${join(values.artifacts, f)}: missing (run boards/pico-w/ci.sh first)`);
  }
  if (values.bootloader && !existsSync(values.bootloader.replace(/\.bin$/, '.elf'))) {
    throw new Error(`--bootloader ${values.bootloader}: its ELF (${values.bootloader.replace(/\.bin$/, '.elf')}) must be beside it, for --stop-at`);
  }
  const only = values.only ? values.only.split(',') : CHECKS.map((c) => c.id);
  for (const id of only) if (!CHECKS.some((c) => c.id === id)) throw new Error(`--only ${id}: no such check (a..e)`);
  return { ...values, only };
}

async function main() {
  const args = parse(process.argv.slice(2));
  const dir = args.artifacts;
  const work = args.work ?? join(dir, 'emu-check');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const rig = findRig(dir);
  const maker = new ImageMaker(join(BOARD_DIR, 'tools', 'pico_image.py'), work, rig);
  const bootloaderBin = args.bootloader ?? join(dir, 'bootloader.bin');
  const v1a = maker.image(join(dir, 'app-a.bin'), 'a', '1.0.0');
  const ctx = {
    work,
    grammar: new Grammar(CONSOLE_MD),
    bootloaderElf: args.bootloader ? args.bootloader.replace(/\.bin$/, '.elf') : join(dir, 'bootloader.elf'),
    v1a,
    v2a: maker.image(join(dir, 'app-a.bin'), 'a', '2.0.0'),
    v2b: maker.image(join(dir, 'app-b.bin'), 'b', '2.0.0'),
    golden: maker.golden(bootloaderBin, v1a),
    out: (line) => process.stdout.write(`${line}\n`),
    file(name, bytes) {
      const path = join(work, name);
      writeFileSync(path, bytes);
      return path;
    },
  };
  ctx.out(`check: bootloader ${bootloaderBin}; flash files in ${work}`);
  ctx.out(
    rig
      ? `check: images signed by the harness and by \`${rig} image sign\`: identical`
      : 'check: no rig binary (OTARIG_RIG, or target/release/rig): images signed by the harness only',
  );
  let passed = 0;
  let failed = 0;
  for (const check of CHECKS.filter((c) => args.only.includes(c.id))) {
    ctx.out(`--- (${check.id}) ${check.title}`);
    const started = Date.now();
    let error = null;
    try {
      await check.run(ctx);
      passed++;
    } catch (e) {
      error = e instanceof CheckFailed ? e.message : `harness error: ${e.stack ?? e.message}`;
      failed++;
    }
    const took = `[${((Date.now() - started) / 1000).toFixed(1)} s]`;
    ctx.out(error ? `FAIL (${check.id}) ${check.title} ${took}: ${error}` : `ok   (${check.id}) ${check.title} ${took}`);
  }
  ctx.out(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  // Usage errors, missing artifacts, an image tool failure: before any check ran.
  process.stderr.write(`check: ${e.message}\n`);
  process.exit(2);
});
