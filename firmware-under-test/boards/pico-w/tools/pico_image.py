#!/usr/bin/env python3
"""Host tools for the otarig Pico W firmware (python3 standard library only).

    pico_image.py bin ELF OUT --base ADDR --size BYTES
        Raw flash contents of a linked ELF (its loadable segments at their load addresses),
        from ADDR on, gaps filled with 0xFF (erased flash). Fails if a segment lies outside
        ADDR..ADDR+BYTES.

    pico_image.py sizes [--skip-section NAME]... NAME=ELF:START:LIMIT...
        Prints text/data/bss of each ELF against its flash partition (START, LIMIT bytes);
        exits 1 if one does not fit.

    pico_image.py image --bin APP.bin --slot a|b --version X.Y.Z [--rollback-counter N] --out F
        An UNSIGNED otarig image for the Pico W: the 256-byte header of ota-core's
        image.rs (board `pico-w`, load address and entry point of the slot the app is linked
        for, SHA-256 of the body; signature left zero) followed by APP.bin. Sign it with
        `rig image sign --key release.key -o F.img F` (the header parses without a signature;
        `rig image sign` only replaces it).

    pico_image.py key --pub release.pub --out key-region.bin
        The provisioning blob for flash offset 0x10000 (XIP 0x10010000): the key sector
        (`OTPK` + the 32-byte public key from `rig keygen`'s release.pub, hex) followed by two
        erased sectors that clear both state-record copies.
"""

import argparse
import hashlib
import struct
import sys

XIP_BASE = 0x1000_0000
SLOTS = {"a": 0x0002_0000, "b": 0x000A_0000}
SLOT_SIZE = 512 * 1024
HEADER_LEN = 256
SIGNED_LEN = 192
KEY_REGION = 0x0001_0000
SECTOR = 4096
RAM = (0x2000_0000, 0x2004_2000)

PT_LOAD = 1
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2


class ToolError(Exception):
    pass


def read_elf(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ToolError(f"{path}: not a 32-bit little-endian ELF file")
    return data


def segments(data):
    """Loadable segments with file contents: (load address, bytes)."""
    (phoff,) = struct.unpack_from("<I", data, 0x1C)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    out = []
    for i in range(phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz, _memsz, _flags, _align = struct.unpack_from(
            "<8I", data, phoff + i * phentsize
        )
        if p_type == PT_LOAD and p_filesz > 0:
            out.append((p_paddr, data[p_offset : p_offset + p_filesz]))
    return out


def sections(data):
    """Allocated sections: (name, flags, type, address, size)."""
    (shoff,) = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)

    def header(i):
        return struct.unpack_from("<10I", data, shoff + i * shentsize)

    strtab = header(shstrndx)
    str_off = strtab[4]
    out = []
    for i in range(shnum):
        name_off, sh_type, flags, addr, _offset, size = header(i)[:6]
        if not flags & SHF_ALLOC:
            continue
        end = data.index(b"\0", str_off + name_off)
        name = data[str_off + name_off : end].decode()
        out.append((name, flags, sh_type, addr, size))
    return out


def elf_to_bin(data, base, size, what):
    segs = segments(data)
    if not segs:
        raise ToolError(f"{what}: no loadable segment")
    end = base
    for addr, blob in segs:
        if addr < base or addr + len(blob) > base + size:
            raise ToolError(
                f"{what}: segment 0x{addr:08x}..0x{addr + len(blob):08x} lies outside "
                f"0x{base:08x}..0x{base + size:08x}"
            )
        end = max(end, addr + len(blob))
    image = bytearray(b"\xff" * (end - base))
    for addr, blob in segs:
        image[addr - base : addr - base + len(blob)] = blob
    return bytes(image)


def cmd_bin(args):
    data = read_elf(args.elf)
    image = elf_to_bin(data, args.base, args.size, args.elf)
    with open(args.out, "wb") as f:
        f.write(image)
    print(f"{args.out}: {len(image)} bytes at 0x{args.base:08x}")


def cmd_sizes(args):
    rows = []
    failed = False
    for spec in args.images:
        try:
            name, rest = spec.split("=", 1)
            path, start, limit = rest.rsplit(":", 2)
            start, limit = int(start, 0), int(limit, 0)
        except ValueError as e:
            raise ToolError(f"{spec}: expected NAME=ELF:START:LIMIT") from e
        data = read_elf(path)
        text = dat = bss = 0
        secs = sections(data)
        skipped = {(addr, size) for sec, _f, _t, addr, size in secs if sec in args.skip_section}
        for sec, flags, sh_type, _addr, size in secs:
            if sec in args.skip_section:
                continue
            if sh_type == SHT_NOBITS:
                bss += size
            elif flags & SHF_WRITE:
                dat += size
            else:
                text += size
        used = text + dat
        inside = True
        # The partition must also hold every byte the ELF places in flash (its segments).
        for addr, blob in segments(data):
            if addr < XIP_BASE or addr >= XIP_BASE + 0x0100_0000:
                continue
            if (addr, len(blob)) in skipped:
                continue
            if addr < start or addr + len(blob) > start + limit:
                inside = False
                print(
                    f"{name}: segment 0x{addr:08x}..0x{addr + len(blob):08x} outside its "
                    f"partition 0x{start:08x}..0x{start + limit:08x}",
                    file=sys.stderr,
                )
        verdict = "ok" if used <= limit and inside else "TOO LARGE" if inside else "OUTSIDE"
        failed |= verdict != "ok"
        rows.append((name, text, dat, bss, used, start, limit, verdict))
    head = ("image", "text", "data", "bss", "flash used", "partition", "size", "free", "use", "")
    print("{:<22} {:>8} {:>6} {:>7} {:>10} {:>11} {:>8} {:>8} {:>6}  {}".format(*head))
    for name, text, dat, bss, used, start, limit, verdict in rows:
        print(
            "{:<22} {:>8} {:>6} {:>7} {:>10} {:>11} {:>8} {:>8} {:>5.1f}%  {}".format(
                name,
                text,
                dat,
                bss,
                used,
                f"0x{start:08x}",
                limit,
                limit - used,
                100.0 * used / limit,
                verdict,
            )
        )
    return 1 if failed else 0


def parse_version(text):
    parts = text.lstrip("v").split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and int(p) < 65536 for p in parts):
        raise ToolError(f"--version {text}: expected major.minor.patch")
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums


def cmd_image(args):
    with open(args.bin, "rb") as f:
        body = f.read()
    slot = args.slot.lower()
    load = XIP_BASE + SLOTS[slot] + HEADER_LEN
    if len(body) < 8:
        raise ToolError(f"{args.bin}: too short for a vector table")
    if HEADER_LEN + len(body) > SLOT_SIZE:
        raise ToolError(f"{args.bin}: {len(body)} bytes do not fit a slot with its header")
    sp, reset = struct.unpack_from("<II", body, 0)
    linked_here = (
        RAM[0] <= sp <= RAM[1] and reset & 1 == 1 and load < reset < load + len(body)
    )
    if not linked_here and not args.force:
        raise ToolError(
            f"{args.bin}: its vector table (sp 0x{sp:08x}, reset 0x{reset:08x}) is not that of "
            f"an app linked for slot {slot} at 0x{load:08x}: build it with OTARIG_SLOT={slot} "
            "(or give --force to build a deliberately unbootable image)"
        )
    major, minor, patch = parse_version(args.version)
    board = b"pico-w".ljust(16, b"\0")
    header = bytearray(HEADER_LEN)
    struct.pack_into(
        "<4sHH3HHIIII32s16s",
        header,
        0,
        b"OTAI",
        1,
        HEADER_LEN,
        major,
        minor,
        patch,
        0,
        args.rollback_counter,
        len(body),
        load,
        reset,
        hashlib.sha256(body).digest(),
        board,
    )
    assert len(header) == HEADER_LEN and all(b == 0 for b in header[80:])
    with open(args.out, "wb") as f:
        f.write(bytes(header) + body)
    print(
        f"{args.out}: unsigned pico-w image v{major}.{minor}.{patch} for slot {slot} "
        f"({HEADER_LEN + len(body)} bytes, entry 0x{reset:08x}); sign it with "
        f"`rig image sign --key release.key -o SIGNED {args.out}`"
    )


def cmd_key(args):
    with open(args.pub) as f:
        text = f.read().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError as e:
        raise ToolError(f"{args.pub}: expected the hex public key written by `rig keygen`") from e
    if len(key) != 32:
        raise ToolError(f"{args.pub}: expected 32 bytes, found {len(key)}")
    blob = bytearray(b"\xff" * (3 * SECTOR))
    blob[:36] = b"OTPK" + key
    with open(args.out, "wb") as f:
        f.write(bytes(blob))
    print(
        f"{args.out}: key region + erased state records, {len(blob)} bytes for "
        f"0x{XIP_BASE + KEY_REGION:08x}"
    )


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bin", help="ELF to raw flash binary")
    b.add_argument("elf")
    b.add_argument("out")
    b.add_argument("--base", type=lambda s: int(s, 0), required=True)
    b.add_argument("--size", type=lambda s: int(s, 0), required=True)

    s = sub.add_parser("sizes", help="size table against partitions; exit 1 if one overflows")
    s.add_argument("images", nargs="+", metavar="NAME=ELF:START:LIMIT")
    s.add_argument("--skip-section", action="append", default=[])

    i = sub.add_parser("image", help="unsigned pico-w image from an app .bin")
    i.add_argument("--bin", required=True)
    i.add_argument("--slot", required=True, choices=["a", "b", "A", "B"])
    i.add_argument("--version", required=True)
    i.add_argument("--rollback-counter", type=int, default=1)
    i.add_argument("--force", action="store_true")
    i.add_argument("--out", required=True)

    k = sub.add_parser("key", help="key-region provisioning blob from release.pub")
    k.add_argument("--pub", required=True)
    k.add_argument("--out", required=True)

    args = p.parse_args(argv)
    try:
        if args.cmd == "bin":
            cmd_bin(args)
        elif args.cmd == "sizes":
            return cmd_sizes(args)
        elif args.cmd == "image":
            cmd_image(args)
        elif args.cmd == "key":
            cmd_key(args)
    except (ToolError, OSError) as e:
        print(f"pico_image.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
