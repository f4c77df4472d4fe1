// One emulated Pico W: an RP2040 (rp2040js) with the vendored boot ROM, the flash file (and the
// chip answering on the QSPI bus), the XIP control stub, UART0 and the recovery button. A watchdog reset builds a
// fresh chip (new clock, so the old chip's alarms are gone with it) that keeps only the
// watchdog's SCRATCH/REASON registers. There is no second core and no SYSRESETREQ.
import { RP2040 } from 'rp2040js';

import { romFunction } from './bootrom.js';
import { FlashChip, attachFlashChip } from './qspi.js';
import { CHIP_RESET_SLOT, ChipReset, XIP_CTRL_SLOT, XipCtrl } from './stubs.js';
import * as watchdog from './watchdog.js';

const CYCLE_NS = 8; // 125 MHz, the clock the firmware sets up
const RECOVERY_BUTTON = 15; // GP15, to ground when pressed; the firmware enables a pull-up
const QSPI_SS = 1;
const QSPI_SS_PAD_RESET = 0x5a;
const ROM_END = 0x4000;
const MAX_DISTINCT_WARNINGS = 40;

/** Why `run` returned. */
export const Stop = Object.freeze({
  Budget: 'budget', // the instruction budget of this call is used up: call run again
  Waypoint: 'waypoint', // the last --stop-at waypoint was reached (the CPU is frozen before it)
  Idle: 'idle', // the CPU sleeps with nothing that could wake it
  Ended: 'ended', // a callback asked to stop (board.end())
});

export class Board {
  /**
   * @param {object} o
   * @param {{ words: Uint32Array, bytes: Buffer }} o.bootrom
   * @param {import('./flash.js').FlashFile} o.flash
   * @param {Uint8Array|null} o.deviceId 8 bytes, or null for rp2040js's zeros
   * @param {boolean} o.recoveryPressed hold GP15 low from power-on
   * @param {Array<{label: string, addrs: Set<number>}>} o.waypoints stop at the last one, in order
   * @param {(byte: number) => void} o.onUartByte
   * @param {(reset: {boot: number, cause: string}) => void} o.onReset before each new chip runs
   * @param {(msg: string) => void} o.report emulator notes (stderr)
   */
  constructor(o) {
    Object.assign(this, o);
    this.romErase = romFunction(o.bootrom.bytes, 'RE');
    this.romProgram = romFunction(o.bootrom.bytes, 'RP');
    this.waypoint = 0;
    this.boot = 0;
    this.chip = null;
    this.pastNs = 0; // emulated time of the chips before this one
    this.ended = false;
    this.warnings = new Map();
  }

  /** Power on: a chip with cleared watchdog registers. */
  powerOn() {
    this.build(null, 'power-on');
  }

  /** Emulated time since power-on, over every chip (reset) so far, in ns. */
  get elapsedNs() {
    return this.pastNs + (this.chip ? this.chip.clock.nanos : 0);
  }

  /** Stops the current `run` call at its next instruction. */
  end() {
    this.ended = true;
  }

  build(carried, cause) {
    if (this.chip) this.pastNs += this.chip.clock.nanos;
    const chip = new RP2040();
    chip.logger = this.logger();
    chip.loadBootrom(this.bootrom.words); // the core starts at the ROM's reset vector
    chip.flash.set(this.flash.mem);
    attachFlashChip(chip, new FlashChip(chip.flash, this.deviceId));
    chip.peripherals[XIP_CTRL_SLOT] = new XipCtrl(chip, (m) => this.report(m));
    chip.peripherals[CHIP_RESET_SLOT] = new ChipReset(chip);
    const wd = chip.peripherals[watchdog.WATCHDOG_SLOT];
    if (carried) watchdog.restore(wd, carried);
    wd.onWatchdogTrigger = () => {
      this.pendingReset = watchdog.carried(wd);
      watchdog.disarm(wd);
    };
    chip.uart[0].onByte = (b) => this.onUartByte(b);
    chip.gpio[RECOVERY_BUTTON].setInputValue(!this.recoveryPressed);
    // BOOTSEL: the ROM samples QSPI SS at reset (low: "boot from USB"); not pressed. The pad
    // gets its datasheet reset value (input enabled, pull-up), which rp2040js does not give it.
    chip.qspi[QSPI_SS].padValue = QSPI_SS_PAD_RESET;
    chip.qspi[QSPI_SS].setInputValue(true);
    this.chip = chip;
    this.pendingReset = null;
    this.boot += 1;
    this.onReset({ boot: this.boot, cause });
  }

  /** Runs up to `budget` instructions (sleeping time is skipped to the next alarm). */
  run(budget) {
    const { romErase, romProgram } = this;
    for (let i = 0; i < budget; i++) {
      if (this.ended) return Stop.Ended;
      if (this.pendingReset) {
        const regs = this.pendingReset;
        this.build(regs, `watchdog ${watchdog.describe(regs)}`);
        continue;
      }
      const { core, clock } = this.chip;
      if (core.waiting) {
        const ns = clock.nanosToNextAlarm;
        if (ns <= 0 && !clock.nextAlarm) return Stop.Idle;
        clock.tick(Math.max(ns, CYCLE_NS));
        continue;
      }
      const pc = core.registers[15];
      if (this.waypoints.length && this.waypoints[this.waypoint].addrs.has(pc)) {
        this.waypoint += 1;
        if (this.waypoint === this.waypoints.length) return Stop.Waypoint;
      }
      if (pc < ROM_END && (pc === romErase || pc === romProgram)) {
        this.romFlashCall(pc === romErase);
        continue;
      }
      clock.tick(core.executeInstruction() * CYCLE_NS);
    }
    return Stop.Budget;
  }

  /** Does the ROM routine's work on the flash file and returns to the caller (LR). */
  romFlashCall(erase) {
    const { core, sram } = this.chip;
    const [r0, r1, r2] = core.registers;
    if (erase) {
      this.flash.erase(r0, r1);
      this.chip.flash.fill(0xff, r0, r0 + r1);
    } else {
      const ramOffset = r1 - 0x20000000;
      if (ramOffset < 0 || ramOffset + r2 > sram.length) {
        throw new Error(`flash_range_program from 0x${r1.toString(16)}: the emulator only programs from SRAM`);
      }
      const data = sram.subarray(ramOffset, ramOffset + r2);
      this.flash.program(r0, data);
      this.chip.flash.set(this.flash.mem.subarray(r0, r0 + r2), r0);
    }
    // Time a W25Q16JV takes: 45 ms per sector erase, 0.4 ms per page program (typical).
    this.chip.clock.tick(erase ? (r1 / 4096) * 45e6 : (r2 / 256) * 0.4e6);
    core.registers[15] = core.registers[14] & ~1;
  }

  /**
   * rp2040js's log messages to the report callback: each one once, and at most
   * MAX_DISTINCT_WARNINGS distinct ones per power-on (a runaway CPU logs one per address).
   */
  logger() {
    const once = (level) => (component, message) => {
      const key = `${component}: ${message}`;
      if (this.warnings.has(key)) return;
      this.warnings.set(key, 1);
      const gap = message.includes('not implemented'); // always told: the run proves nothing
      if (gap || this.warnings.size <= MAX_DISTINCT_WARNINGS) this.report(`rp2040js ${level} ${key}`);
      else if (this.warnings.size === MAX_DISTINCT_WARNINGS + 1) this.report('rp2040js: further warnings suppressed');
    };
    return { debug() {}, info() {}, warn: once('warning'), error: once('error') };
  }
}
