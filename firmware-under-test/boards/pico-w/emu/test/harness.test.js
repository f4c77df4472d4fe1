// Unit tests of the harness's own models (`npm test`, run by check.sh before the checks).
import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { loadBootrom, romFunction } from '../src/bootrom.js';
import { Grammar } from '../src/console.js';
import { demangle } from '../src/elf.js';
import { FLASH_SIZE, FlashFile } from '../src/flash.js';
import { MAP, clearState, crc32, putState, readState, testKey } from '../src/images.js';
import { FlashChip, parseDeviceId } from '../src/qspi.js';
import { LineSplitter } from '../src/uart.js';

const CONSOLE_MD = fileURLToPath(new URL('../../../../CONSOLE.md', import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), 'pico-emu-test-'));

test('flash: NOR semantics, written through to the file', () => {
  const path = join(tmp(), 'f.bin');
  writeFileSync(path, Buffer.from([0x12, 0x34])); // short file: padded with 0xFF
  const f = new FlashFile(path);
  assert.equal(f.mem.length, FLASH_SIZE);
  assert.deepEqual([...f.mem.subarray(0, 3)], [0x12, 0x34, 0xff]);
  f.program(0x1000, Buffer.alloc(256, 0xf0));
  f.program(0x1000, Buffer.alloc(256, 0x3c)); // a second program only clears bits
  assert.equal(f.mem[0x1000], 0x30);
  assert.equal(readFileSync(path)[0x10ff], 0x30, 'on disk before the next operation');
  f.erase(0x1000, 0x1000);
  assert.equal(readFileSync(path)[0x1000], 0xff);
  assert.throws(() => f.erase(0x800, 0x1000), /whole 4096-byte units/);
  assert.throws(() => f.program(0x10, Buffer.alloc(256)), /whole 256-byte units/);
  assert.throws(() => f.program(FLASH_SIZE, Buffer.alloc(256)), /inside the/);
  assert.deepEqual(f.ops, { erase: 1, program: 2 });
  f.close();
});

test('boot ROM: checked, and its flash routines found in the function table', () => {
  const rom = loadBootrom();
  assert.equal(romFunction(rom.bytes, 'RE'), 0x237c);
  assert.equal(romFunction(rom.bytes, 'RP'), 0x23c4);
  assert.throws(() => romFunction(rom.bytes, 'ZZ'), /no function 'ZZ'/);
  const bad = Buffer.from(rom.bytes);
  bad[100] ^= 1;
  const path = join(tmp(), 'rom.bin');
  writeFileSync(path, bad);
  assert.throws(() => loadBootrom(path), /is not the vendored B1 ROM/);
});

test('elf: Rust legacy names demangle to their paths', () => {
  assert.equal(demangle('_ZN8ota_core5state5store17h0123456789abcdefE'), 'ota_core::state::store');
  assert.equal(demangle('main'), 'main');
  assert.equal(demangle('_ZN3foo'), '_ZN3foo');
});

test('console: CONSOLE.md patterns accept its lines and nothing else', () => {
  const g = new Grammar(CONSOLE_MD);
  for (const line of [
    'boot: otarig-boot board=pico-w device=pico-00000000c0ffee01 reset=watchdog',
    'boot: trial version=2.0.0 attempt=3/3',
    'boot: refuse slot=b reason=bad-signature',
    'app: v1.0.0 starting drill=none',
    'app: v1.0.0 crash: no runnable app at its entry point',
    'download: error reason=timeout retry=1/8 in=250ms',
    'watchdog: expired',
  ]) {
    assert.ok(g.match(line), line);
  }
  for (const line of [
    'net: no Wi-Fi network configured',
    'boot: FATAL flash error',
    'boot: slot=c version=1.0.0 state=confirmed',
    'boot: trial version=2.0 attempt=1/3',
    'app: v1.0.0 starting drill=none ',
    'boot: otarig-boot board=pico-w device=x reset=cosmic-ray',
  ]) {
    assert.equal(g.match(line), null, line);
  }
});

test('images: CRC-32 and the state record layout of ota-core/src/state.rs', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const flash = Buffer.alloc(FLASH_SIZE, 0);
  clearState(flash);
  putState(flash, { seq: 3, active: 1, trial: true, attempts: 2, previous: 0, floor: 5 });
  const rec = flash.subarray(MAP.state[1], MAP.state[1] + 96);
  assert.equal(rec.toString('latin1', 0, 4), 'OTAS');
  assert.equal(rec.readUInt32LE(4), 3);
  assert.deepEqual([...rec.subarray(8, 14)], [1, 1, 2, 0, 0, 0]);
  assert.equal(rec.readUInt32LE(20), 5);
  assert.equal(rec[56], 0xff);
  assert.equal(rec.readUInt32LE(92), crc32(rec.subarray(0, 92)));
  assert.ok(flash.subarray(MAP.state[0], MAP.state[0] + 0x1000).every((b) => b === 0xff));
  assert.deepEqual(readState(flash), { seq: 3, active: 1, trial: true, attempts: 2, previous: 0 });
  putState(flash, { seq: 4, active: 0 });
  assert.equal(readState(flash).seq, 4, 'the highest valid sequence number is in charge');
  flash[MAP.state[0] + 50] ^= 1; // a torn record: CRC mismatch
  assert.equal(readState(flash).seq, 3);
});

test('images: the test key signs what its public key verifies', () => {
  const { key, pub } = testKey();
  assert.equal(pub.length, 32);
  const sig = sign(null, Buffer.from('header'), key);
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]);
  assert.ok(verify(null, Buffer.from('header'), { key: spki, format: 'der', type: 'spki' }, sig));
});

test('qspi: the flash chip answers READ DATA, READ UNIQUE ID and JEDEC ID', () => {
  const mem = Uint8Array.from({ length: 0x2000 }, (_, i) => i & 0xff);
  const chip = new FlashChip(mem, parseDeviceId('0123456789abcdef'));
  const exchange = (bytes) => {
    chip.select();
    return bytes.map((b) => chip.clock(b));
  };
  assert.deepEqual(exchange([0x03, 0x00, 0x10, 0x42, 0, 0, 0]), [0, 0, 0, 0, 0x42, 0x43, 0x44]);
  assert.deepEqual(exchange([0x4b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).slice(5), [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
  assert.deepEqual(exchange([0x9f, 0, 0, 0]), [0, 0xef, 0x40, 0x15]);
  assert.deepEqual(exchange([0x05, 0]), [0, 0], 'status: never busy');
  assert.throws(() => parseDeviceId('xyz'), /16 hex digits/);
});

test('uart: lines, and the unfinished rest', () => {
  const lines = [];
  const s = new LineSplitter((l) => lines.push(l));
  for (const b of Buffer.from('one\r\ntwo\nthr')) s.push(b);
  assert.deepEqual(lines, ['one', 'two']);
  assert.equal(s.rest, 'thr');
});
