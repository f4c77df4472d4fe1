// Symbols of an ELF32 little-endian file (the firmware's ELFs keep their symbol tables: release
// builds with debug = 2), for stopping the emulated CPU at a function's first instruction.
import { readFileSync } from 'node:fs';

const SHT_SYMTAB = 2;
const STT_FUNC = 2;

/** Function symbols of `path`: [{ name (demangled path), raw, addr (Thumb bit cleared), size }]. */
export function functionSymbols(path) {
  const b = readFileSync(path);
  if (b.length < 52 || b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path}: not an ELF file`);
  if (b[4] !== 1 || b[5] !== 1) throw new Error(`${path}: not a 32-bit little-endian ELF`);
  const shoff = b.readUInt32LE(0x20);
  const shentsize = b.readUInt16LE(0x2e);
  const shnum = b.readUInt16LE(0x30);
  const section = (i) => {
    const at = shoff + i * shentsize;
    return {
      type: b.readUInt32LE(at + 4),
      offset: b.readUInt32LE(at + 16),
      size: b.readUInt32LE(at + 20),
      link: b.readUInt32LE(at + 24),
    };
  };
  const out = [];
  for (let i = 0; i < shnum; i++) {
    const sh = section(i);
    if (sh.type !== SHT_SYMTAB) continue;
    const strtab = section(sh.link);
    for (let at = sh.offset; at + 16 <= sh.offset + sh.size; at += 16) {
      if ((b[at + 12] & 0xf) !== STT_FUNC) continue;
      const nameAt = strtab.offset + b.readUInt32LE(at);
      const raw = b.toString('latin1', nameAt, b.indexOf(0, nameAt));
      out.push({ name: demangle(raw), raw, addr: b.readUInt32LE(at + 4) & ~1, size: b.readUInt32LE(at + 8) });
    }
  }
  if (out.length === 0) throw new Error(`${path}: no function symbols (a stripped ELF?)`);
  return out;
}

/**
 * Rust's legacy mangling (`_ZN8ota_core5state5store17h0123456789abcdefE`) to its path
 * (`ota_core::state::store`), without the hash. Other names are returned unchanged.
 */
export function demangle(raw) {
  if (!raw.startsWith('_ZN') || !raw.endsWith('E')) return raw;
  const parts = [];
  let i = 3;
  while (i < raw.length - 1) {
    const m = /^\d+/.exec(raw.slice(i));
    if (!m) return raw;
    const len = Number(m[0]);
    i += m[0].length;
    parts.push(raw.slice(i, i + len));
    i += len;
  }
  if (parts.length > 1 && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1])) parts.pop();
  return parts.join('::');
}

/** Addresses of every function named `name` (each monomorphised copy) in `elfs`. */
export function findFunction(elfs, name) {
  const hits = [];
  for (const path of elfs) {
    for (const s of functionSymbols(path)) if (s.name === name) hits.push({ ...s, elf: path });
  }
  if (hits.length === 0) {
    throw new Error(
      `no function ${name} in ${elfs.join(', ')} (inlined, or a different name; ` +
        'list them with `llvm-nm -C` or `arm-none-eabi-nm -C`)',
    );
  }
  return hits;
}
