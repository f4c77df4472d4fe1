// The flash chip's unique id. rp2040js's SSI answers every read with 0, so embassy-rp's
// `blocking_unique_id` (READ_UNIQUE_ID, 0x4B: command, 4 dummy bytes, 8 id bytes, in the SSI's
// EEPROM-read mode) would give an all-zero device id. This wraps the SSI instance so that the
// command answers with the id given on the command line (`--device-id`).
const SSI_CTRLR0 = 0x00;
const SSI_DR0 = 0x60;
const TMOD_EEPROM_READ = 3;
const CMD_READ_UNIQUE_ID = 0x4b;
const DUMMY_BYTES = 4;

/** Parses a 16-hex-digit id into 8 bytes. */
export function parseDeviceId(text) {
  if (!/^[0-9a-fA-F]{16}$/.test(text)) {
    throw new Error(`--device-id ${text}: expected 16 hex digits (the flash chip's 64-bit unique id)`);
  }
  return Uint8Array.from(text.match(/../g).map((b) => parseInt(b, 16)));
}

/** Makes `ssi` (rp2040js's RPSSI instance) answer READ_UNIQUE_ID with `id` (8 bytes). */
export function answerUniqueId(ssi, id) {
  const read = ssi.readUint32.bind(ssi);
  const write = ssi.writeUint32.bind(ssi);
  let pending = [];
  ssi.readUint32 = (offset) => (offset === SSI_DR0 && pending.length ? pending.shift() : read(offset));
  ssi.writeUint32 = (offset, value) => {
    const tmod = (read(SSI_CTRLR0) >> 8) & 3;
    if (offset === SSI_DR0 && tmod === TMOD_EEPROM_READ && (value & 0xff) === CMD_READ_UNIQUE_ID) {
      pending = [...new Array(DUMMY_BYTES).fill(0), ...id];
    }
    write(offset, value);
  };
}
