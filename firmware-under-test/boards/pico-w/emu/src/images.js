// Flash images for the checks, made the way the bench makes them: tools/pico_image.py writes
// the unsigned image headers and the key region; the images are signed here (ed25519 over the
// header's first 192 bytes, ota-core/src/image.rs) with a fixed test key, so the check needs no
// build of the host workspace. When a rig binary is at hand (CI builds target/release/rig
// before the Pico W steps), every image is also signed by `rig image sign` and the two must
// agree byte for byte. A wrong signature would show anyway: the bootloader refuses the image.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FLASH_SIZE } from './flash.js';

const HEADER_LEN = 256;
const SIGNED_LEN = 192;

/** The flash map (ota-core/src/layout.rs SIM, boards/pico-w/README.md). */
export const MAP = Object.freeze({
  keyRegion: 0x10000,
  state: [0x11000, 0x12000],
  slots: [0x20000, 0xa0000],
  factory: 0x120000,
  slotSize: 0x80000,
});

/** A fixed ed25519 test key (never a release key): the seed is 32 bytes of 0x07. */
export function testKey() {
  const seed = Buffer.alloc(32, 7);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x, 'base64url');
  return { key, pub, seed };
}

export class ImageMaker {
  /**
   * @param {string} tool tools/pico_image.py
   * @param {string} dir scratch directory
   * @param {string|null} rig a rig binary to cross-check signatures with, or null
   */
  constructor(tool, dir, rig = null) {
    this.tool = tool;
    this.dir = dir;
    this.rig = rig;
    this.signer = testKey();
    this.keyFile = join(dir, 'test.key'); // `rig keygen`'s format: the hex seed
    writeFileSync(this.keyFile, `${this.signer.seed.toString('hex')}\n`);
  }

  py(args) {
    try {
      return execFileSync('python3', [this.tool, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new Error(`python3 ${this.tool} ${args.join(' ')}: ${e.stderr || e.message}`);
    }
  }

  /** A signed image of `bin` (an app .bin linked for `slot`, 'a' or 'b') at `version`. */
  image(bin, slot, version, { rollbackCounter = 1 } = {}) {
    const unsigned = join(this.dir, `v${version}-${slot}.unsigned`);
    this.py(['image', '--bin', bin, '--slot', slot, '--version', version, '--rollback-counter', String(rollbackCounter), '--out', unsigned]);
    const img = readFileSync(unsigned);
    const sig = sign(null, img.subarray(0, SIGNED_LEN), this.signer.key);
    sig.copy(img, SIGNED_LEN);
    if (SIGNED_LEN + sig.length !== HEADER_LEN) throw new Error('an ed25519 signature is 64 bytes');
    if (this.rig) {
      const byRig = join(this.dir, `v${version}-${slot}.rig.img`);
      try {
        execFileSync(this.rig, ['image', 'sign', '--key', this.keyFile, '-o', byRig, unsigned], { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        throw new Error(`${this.rig} image sign ${unsigned}: ${e.stderr || e.message}`);
      }
      if (Buffer.compare(readFileSync(byRig), img) !== 0) {
        throw new Error(`${byRig}: \`rig image sign\` made a different image than the harness's signer`);
      }
    }
    return img;
  }

  /** The key region blob (`OTPK` + public key, then two erased state sectors). */
  keyRegion() {
    const pub = join(this.dir, 'test.pub');
    writeFileSync(pub, `${this.signer.pub.toString('hex')}\n`);
    const out = join(this.dir, 'key-region.bin');
    this.py(['key', '--pub', pub, '--out', out]);
    return readFileSync(out);
  }

  /**
   * The golden flash image, as `rig image pico --golden` lays it out: bootloader, key region,
   * the factory image in slot A and in the factory region, no state record.
   */
  golden(bootloaderBin, factoryImage) {
    const flash = Buffer.alloc(FLASH_SIZE, 0xff);
    const boot = readFileSync(bootloaderBin);
    if (boot.length > MAP.keyRegion) throw new Error(`${bootloaderBin}: ${boot.length} bytes overflow the bootloader partition`);
    boot.copy(flash, 0);
    this.keyRegion().copy(flash, MAP.keyRegion);
    factoryImage.copy(flash, MAP.slots[0]);
    factoryImage.copy(flash, MAP.factory);
    return flash;
  }
}

/** Writes `img` into `slot` (0 = A, 1 = B) of `flash`, erasing the rest of the slot. */
export function putSlot(flash, slot, img) {
  const at = MAP.slots[slot];
  if (img.length > MAP.slotSize) throw new Error(`an image of ${img.length} bytes does not fit a slot`);
  flash.fill(0xff, at, at + MAP.slotSize);
  img.copy(flash, at);
}

/** Erases both state record sectors of `flash`. */
export function clearState(flash) {
  flash.fill(0xff, MAP.state[0], MAP.state[1] + 0x1000);
}

/**
 * Writes a state record (ota-core/src/state.rs: 96 bytes, CRC-32 over 0..92) into its copy
 * (`seq & 1`), as the app or the bootloader leave one.
 */
export function putState(flash, { seq, active, trial = false, attempts = 0, previous = null, floor = 1 }) {
  const rec = Buffer.alloc(96, 0);
  rec.write('OTAS', 0, 'latin1');
  rec.writeUInt32LE(seq, 4);
  rec[8] = active;
  rec[9] = trial ? 1 : 0;
  rec[10] = attempts;
  rec[11] = previous ?? 0xff;
  rec[12] = 0; // not reverted
  rec[13] = 0; // no last error; 14..20: no rejected version
  rec.writeUInt32LE(floor, 20);
  rec[56] = 0xff; // no download in progress
  rec.writeUInt32LE(crc32(rec.subarray(0, 92)), 92);
  const at = MAP.state[seq & 1];
  flash.fill(0xff, at, at + 0x1000);
  rec.copy(flash, at);
}

/**
 * The state record in charge, as ota-core's `state::load` picks it: the valid copy (magic and
 * CRC) with the highest sequence number; null when neither copy is valid.
 */
export function readState(flash) {
  let best = null;
  for (const at of MAP.state) {
    const rec = flash.subarray(at, at + 96);
    if (rec.toString('latin1', 0, 4) !== 'OTAS' || rec.readUInt32LE(92) !== crc32(rec.subarray(0, 92))) continue;
    const st = { seq: rec.readUInt32LE(4), active: rec[8], trial: rec[9] === 1, attempts: rec[10], previous: rec[11] === 0xff ? null : rec[11] };
    if (!best || st.seq > best.seq) best = st;
  }
  return best;
}

/** CRC-32 (IEEE, reflected), as ota-core's `state::crc32`. */
export function crc32(bytes) {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}
