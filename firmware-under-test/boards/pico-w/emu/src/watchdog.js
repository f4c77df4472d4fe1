// What survives a watchdog reset: the watchdog's SCRATCH0..7 and REASON registers. rp2040js's
// watchdog only calls a hook when it fires (timeout or a forced trigger); the board then builds
// a new chip (board.js) and hands these registers to it, like the RP2040's reset, which clears
// everything but the watchdog's own state.
export const WATCHDOG_SLOT = (0x40058000 >>> 14) << 2;

/** The registers to carry into the next chip (REASON: bit 0 timer, bit 1 forced). */
export function carried(wd) {
  return { scratch: Uint32Array.from(wd.scratchData), reason: wd.reason };
}

export function restore(wd, regs) {
  wd.scratchData.set(regs.scratch);
  wd.reason = regs.reason;
}

export function describe(regs) {
  return regs.reason & 1 ? 'timeout' : regs.reason & 2 ? 'forced' : 'none';
}

/**
 * Stops the fired watchdog's countdown. rp2040js re-arms its periodic alarm at once: with the
 * counter at 0 that alarm would fire again and again within one clock tick, before the board
 * gets to build the next chip.
 */
export function disarm(wd) {
  wd.alarm.enable = false;
  wd.timer.enable = false;
}
