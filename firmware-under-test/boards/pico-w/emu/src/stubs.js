// Register blocks rp2040js leaves unimplemented (reads give 0xffffffff) that the boot ROM or
// embassy-rp read, as the minimal models the firmware needs.
//
// The XIP control block at 0x14000000. embassy-rp reads it before
// every flash operation (it waits for STREAM_CTR to reach 0 and drains the stream FIFO until
// STAT says empty). This stub is an idle XIP controller: cache flushes finish at once, no
// streaming transfer is ever running. Starting one is not modelled and is reported.
import { BasePeripheral } from 'rp2040js';

const CTRL = 0x00;
const FLUSH = 0x04;
const STAT = 0x08;
const CTR_HIT = 0x0c;
const CTR_ACC = 0x10;
const STREAM_ADDR = 0x14;
const STREAM_CTR = 0x18;
const STREAM_FIFO = 0x1c;
const STAT_FLUSH_READY = 1 << 0;
const STAT_FIFO_EMPTY = 1 << 1;

/** Peripheral table index rp2040js uses for 0x14000000 (`(address >>> 14) << 2`). */
export const XIP_CTRL_SLOT = (0x14000000 >>> 14) << 2;

export class XipCtrl extends BasePeripheral {
  constructor(rp2040, report) {
    super(rp2040, 'XIP_CTRL');
    this.ctrl = 0x3; // reset value: cache enabled, errors on cache-as-SRAM writes off
    this.streamAddr = 0;
    this.report = report;
  }

  readUint32(offset) {
    switch (offset) {
      case CTRL:
        return this.ctrl;
      case STAT:
        return STAT_FLUSH_READY | STAT_FIFO_EMPTY;
      case FLUSH:
      case CTR_HIT:
      case CTR_ACC:
      case STREAM_CTR:
      case STREAM_FIFO:
        return 0;
      case STREAM_ADDR:
        return this.streamAddr;
      default:
        return super.readUint32(offset);
    }
  }

  writeUint32(offset, value) {
    switch (offset) {
      case CTRL:
        this.ctrl = value;
        return;
      case FLUSH:
      case CTR_HIT:
      case CTR_ACC:
        return;
      case STREAM_ADDR:
        this.streamAddr = value & ~3;
        return;
      case STREAM_CTR:
        if (value !== 0) this.report(`XIP stream read of ${value} words is not modelled (reads stay empty)`);
        return;
      default:
        super.writeUint32(offset, value);
    }
  }
}

/** Peripheral table index of VREG_AND_CHIP_RESET (0x40064000). */
export const CHIP_RESET_SLOT = (0x40064000 >>> 14) << 2;
const VREG = 0x0;
const BOD = 0x4;
const CHIP_RESET = 0x8;

/**
 * VREG_AND_CHIP_RESET. The boot ROM reads CHIP_RESET first: with PSM_RESTART_FLAG (bit 24)
 * set, as an unimplemented read (all ones) would say, it takes the debugger's restart path and
 * sleeps for good. Here the chip always came out of a power-on reset (HAD_POR, bit 8) and the
 * regulator registers keep what is written.
 */
export class ChipReset extends BasePeripheral {
  constructor(rp2040) {
    super(rp2040, 'VREG_AND_CHIP_RESET');
    this.vreg = 0xb1; // reset values
    this.bod = 0x91;
  }

  readUint32(offset) {
    switch (offset) {
      case VREG:
        return this.vreg | (1 << 12); // ROK: regulation ok
      case BOD:
        return this.bod;
      case CHIP_RESET:
        return 1 << 8;
      default:
        return super.readUint32(offset);
    }
  }

  writeUint32(offset, value) {
    switch (offset) {
      case VREG:
        this.vreg = value & 0xf3;
        return;
      case BOD:
        this.bod = value & 0xf1;
        return;
      case CHIP_RESET:
        return; // PSM_RESTART_FLAG is write-1-to-clear; never set here
      default:
        super.writeUint32(offset, value);
    }
  }
}
