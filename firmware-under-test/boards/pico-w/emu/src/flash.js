// The flash chip as a file: NOR semantics (erase sets 0xFF, program can only clear bits), each
// operation written through to the file before the emulated code continues, so a power cut
// (SIGKILL of the emulator at any moment) leaves the file exactly as the chip would be.
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

export const FLASH_SIZE = 2 * 1024 * 1024; // W25Q16JV on the Pico W
export const SECTOR = 4096;
export const PAGE = 256;

export class FlashFile {
  /** Opens `path` (created erased when missing; shorter files are padded with 0xFF). */
  constructor(path) {
    this.path = path;
    this.fd = openSync(path, existsSync(path) ? 'r+' : 'w+');
    const len = fstatSync(this.fd).size;
    if (len > FLASH_SIZE) {
      throw new Error(`${path}: ${len} bytes, larger than the ${FLASH_SIZE}-byte flash chip`);
    }
    this.mem = new Uint8Array(FLASH_SIZE).fill(0xff);
    if (len > 0) readSync(this.fd, this.mem, 0, len, 0);
    if (len < FLASH_SIZE) this.persist(len, FLASH_SIZE - len);
    /** Operations done, for reports: { erase, program }. */
    this.ops = { erase: 0, program: 0 };
  }

  /** ROM flash_range_erase: `count` bytes from `offset`, whole 4 KiB sectors. */
  erase(offset, count) {
    this.check('erase', offset, count, SECTOR);
    this.mem.fill(0xff, offset, offset + count);
    this.persist(offset, count);
    this.ops.erase++;
  }

  /** ROM flash_range_program: whole 256-byte pages; a bit already 0 stays 0. */
  program(offset, data) {
    this.check('program', offset, data.length, PAGE);
    for (let i = 0; i < data.length; i++) this.mem[offset + i] &= data[i];
    this.persist(offset, data.length);
    this.ops.program++;
  }

  check(what, offset, count, unit) {
    if (offset % unit !== 0 || count % unit !== 0 || offset + count > FLASH_SIZE) {
      throw new Error(
        `flash ${what} at 0x${offset.toString(16)} of ${count} bytes: not whole ` +
          `${unit}-byte units inside the ${FLASH_SIZE}-byte chip (the boot ROM would corrupt flash)`,
      );
    }
  }

  persist(offset, count) {
    let done = 0;
    while (done < count) done += writeSync(this.fd, this.mem, offset + done, count - done, offset + done);
  }

  close() {
    closeSync(this.fd);
  }
}
