// The flash chip on the QSPI bus, as the SSI in serial mode sees it. rp2040js's SSI answers
// every byte with 0, which is enough for execute-in-place (rp2040js reads XIP addresses from
// the flash array directly) but not for the two things that talk to the chip byte by byte:
// - the boot ROM's flash boot reads boot2 with READ DATA (03h) and checks its CRC before
//   running it (a chip that answers zeros makes the ROM fall back to USB boot);
// - embassy-rp's `blocking_unique_id` sends READ UNIQUE ID (4Bh: 4 dummy bytes, 8 id bytes) in
//   the SSI's EEPROM-read mode; the id comes from `--device-id` (zeros by default).
//
// Chip select: the ROM drives it through IO_QSPI's SS override (OUTOVER low = selected, high =
// deselected); otherwise the SSI selects the chip while it is enabled (SSIENR). Each selection
// starts a new command. Erase and program never come here: the board runs the ROM's routines
// itself (board.js).
import { BasePeripheral } from 'rp2040js';

const SSI_CTRLR0 = 0x00;
const SSI_CTRLR1 = 0x04;
const SSI_SSIENR = 0x08;
const SSI_TXFLR = 0x20;
const SSI_RXFLR = 0x24;
const SSI_SR = 0x28;
const SSI_DR0 = 0x60;
const SR_TFNF = 1 << 1;
const SR_TFE = 1 << 2;
const SR_RFNE = 1 << 3;
const TMOD_EEPROM_READ = 3;
const FIFO_DEPTH = 16;
const GPIO_QSPI_SS_CTRL = 0x0c;
const OUTOVER_LOW = 2;
const OUTOVER_HIGH = 3;

const CMD_READ_DATA = 0x03;
const CMD_READ_UNIQUE_ID = 0x4b;
const CMD_JEDEC_ID = 0x9f;
const JEDEC_W25Q16JV = [0xef, 0x40, 0x15];

/** Peripheral table index of IO_QSPI (0x40018000). */
export const IO_QSPI_SLOT = (0x40018000 >>> 14) << 2;
export const SSI_SLOT = (0x18000000 >>> 14) << 2;

/** Parses a 16-hex-digit id into 8 bytes. */
export function parseDeviceId(text) {
  if (!/^[0-9a-fA-F]{16}$/.test(text)) {
    throw new Error(`--device-id ${text}: expected 16 hex digits (the flash chip's 64-bit unique id)`);
  }
  return Uint8Array.from(text.match(/../g).map((b) => parseInt(b, 16)));
}

/** The chip's side of one command: fed each byte clocked out, answers the byte clocked in. */
export class FlashChip {
  constructor(mem, uniqueId) {
    this.mem = mem; // the chip's contents (the emulated XIP flash array)
    this.uniqueId = uniqueId ?? new Uint8Array(8);
    this.select();
  }

  /** Chip select asserted: the next byte is a command. */
  select() {
    this.count = 0;
    this.cmd = null;
    this.addr = 0;
  }

  /** One byte exchanged: `out` from the SSI, the return value back to it. */
  clock(out) {
    const i = this.count++;
    if (i === 0) {
      this.cmd = out;
      return 0;
    }
    switch (this.cmd) {
      case CMD_READ_DATA:
        if (i <= 3) {
          this.addr = ((this.addr << 8) | out) & 0xffffff;
          return 0;
        }
        return this.mem[this.addr++ % this.mem.length];
      case CMD_READ_UNIQUE_ID:
        return i <= 4 ? 0 : (this.uniqueId[i - 5] ?? 0);
      case CMD_JEDEC_ID:
        return JEDEC_W25Q16JV[i - 1] ?? 0;
      default:
        return 0; // status registers read 0: never busy, no write enabled
    }
  }
}

/**
 * Connects `chip` to rp2040js's SSI (`ssi`) and replaces the unimplemented IO_QSPI block with
 * one that tracks the SS override.
 */
export function attachFlashChip(rp2040, chip) {
  const ssi = rp2040.peripherals[SSI_SLOT];
  const read = ssi.readUint32.bind(ssi);
  const write = ssi.writeUint32.bind(ssi);
  const rx = [];
  let eepromPending = 0; // EEPROM-read mode: bytes still to clock in after the command
  const tmod = () => (read(SSI_CTRLR0) >> 8) & 3;
  const ssiSelects = () => io.outover !== OUTOVER_LOW && io.outover !== OUTOVER_HIGH;

  ssi.readUint32 = (offset) => {
    switch (offset) {
      case SSI_DR0:
        if (rx.length === 0 && eepromPending > 0) {
          eepromPending--;
          rx.push(chip.clock(0));
        }
        return rx.length ? rx.shift() : 0;
      case SSI_RXFLR:
        return Math.min(rx.length + eepromPending, FIFO_DEPTH);
      case SSI_TXFLR:
        return 0; // bytes leave at once
      case SSI_SR:
        return SR_TFE | SR_TFNF | (rx.length + eepromPending ? SR_RFNE : 0);
      default:
        return read(offset);
    }
  };
  ssi.writeUint32 = (offset, value) => {
    if (offset === SSI_DR0) {
      const answer = chip.clock(value & 0xff);
      if (tmod() === TMOD_EEPROM_READ) {
        eepromPending = (read(SSI_CTRLR1) & 0xffff) + 1; // received after the last command byte
      } else if (rx.length < FIFO_DEPTH) {
        rx.push(answer);
      }
      return;
    }
    if (offset === SSI_SSIENR) {
      rx.length = 0;
      eepromPending = 0;
      if (ssiSelects()) chip.select();
    }
    write(offset, value);
  };

  const io = new IoQspi(rp2040, (outover) => {
    if (outover === OUTOVER_LOW) chip.select();
  });
  rp2040.peripherals[IO_QSPI_SLOT] = io;
}

/** IO_QSPI: the six QSPI pins' control registers, of which only SS's override matters here. */
class IoQspi extends BasePeripheral {
  constructor(rp2040, onSelect) {
    super(rp2040, 'IO_QSPI');
    this.regs = new Map();
    this.outover = 0;
    this.onSelect = onSelect;
  }

  readUint32(offset) {
    return this.regs.get(offset) ?? 0;
  }

  writeUint32(offset, value) {
    this.regs.set(offset, value);
    if (offset === GPIO_QSPI_SS_CTRL) {
      const outover = (value >> 8) & 3;
      if (outover !== this.outover) {
        this.outover = outover;
        this.onSelect(outover);
      }
    }
  }
}
