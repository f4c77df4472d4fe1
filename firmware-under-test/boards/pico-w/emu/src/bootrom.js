// The RP2040 boot ROM: the vendored B1 image (bootrom/README.md) and its function table.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BOOTROM_PATH = fileURLToPath(new URL('../bootrom/bootrom-b1.bin', import.meta.url));
const BOOTROM_SHA256 = '90b31e108faedfa6bbcfcc33ba05dac61e645108cfbbdc385f8dafc71fde44ae';
const BOOTROM_LEN = 16 * 1024;
/** Halfword at 0x14: address of the function table (pairs of u16 code, u16 address). */
const FUNC_TABLE_PTR = 0x14;

/** Reads and checks the vendored ROM; returns it as little-endian words for rp2040js. */
export function loadBootrom(path = BOOTROM_PATH) {
  const bytes = readFileSync(path);
  if (bytes.length !== BOOTROM_LEN) {
    throw new Error(`${path}: ${bytes.length} bytes, a boot ROM has ${BOOTROM_LEN}`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== BOOTROM_SHA256) {
    throw new Error(`${path}: sha256 ${sha} is not the vendored B1 ROM's (${BOOTROM_SHA256})`);
  }
  const words = new Uint32Array(BOOTROM_LEN / 4);
  for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4);
  return { bytes, words };
}

/**
 * Address (Thumb bit cleared) of the ROM function with the two-letter `code`, as
 * `rom_func_lookup` finds it: `RE` flash_range_erase, `RP` flash_range_program.
 */
export function romFunction(bytes, code) {
  const want = code.charCodeAt(0) | (code.charCodeAt(1) << 8);
  for (let at = bytes.readUInt16LE(FUNC_TABLE_PTR); at + 4 <= bytes.length; at += 4) {
    const c = bytes.readUInt16LE(at);
    if (c === 0) break;
    if (c === want) return bytes.readUInt16LE(at + 2) & ~1;
  }
  throw new Error(`boot ROM: no function '${code}' in its function table`);
}
