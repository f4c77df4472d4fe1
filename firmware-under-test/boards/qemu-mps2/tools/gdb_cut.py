#!/usr/bin/env python3
"""Halts a QEMU board at the N-th entry of a function, through QEMU's gdbstub (python3
standard library only): the reference for a breakpoint power cut on the QEMU MPS2 board.

    gdb_cut.py --port P --elf app.elf --symbol otarig_flash_write --hit N

Connects to `qemu-system-arm ... -gdb tcp:127.0.0.1:P` (started with `-S` or running), sets a
breakpoint (`Z0`, Thumb kind 2) at SYMBOL's address in ELF, and continues. QEMU reports the
same breakpoint again on `c` while the PC sits on it, so every hit but the last is stepped
over: remove it (`z0`), single-step (`s`), re-insert it, continue. At the N-th hit it reads the
registers (`g`), prints `halted symbol=S hit=N pc=0x...` and keeps the connection open with
the core halted until it is killed: kill QEMU (SIGKILL) then for an exact cut before the
N-th call does anything. Exit 1 if the board never gets there (timeout or QEMU gone).
"""

import argparse
import re
import socket
import struct
import sys
import time


def symbol_address(elf, name):
    """The address of a symbol (Thumb bit cleared), from the ELF's symbol table."""
    with open(elf, "rb") as f:
        data = f.read()
    (shoff,) = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sh[6]]
        for off in range(sh[4], sh[4] + sh[5], 16):
            st_name, st_value, _size, _info, _other, _shndx = struct.unpack_from("<IIIBBH", data, off)
            start = strtab[4] + st_name
            end = data.index(b"\0", start)
            if data[start:end].decode(errors="replace") == name:
                return st_value & ~1
    raise SystemExit(f"gdb_cut: no symbol {name} in {elf}")


class Rsp:
    """A minimal GDB remote serial protocol client (acknowledged mode)."""

    def __init__(self, port, timeout):
        end = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def send(self, data):
        csum = sum(data.encode()) & 0xFF
        self.sock.sendall(f"${data}#{csum:02x}".encode())

    def recv(self):
        while True:
            m = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                self.sock.sendall(b"+")
                return m.group(1).decode()
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("QEMU closed the gdb connection")
            self.buf += chunk

    def cmd(self, data):
        self.send(data)
        return self.recv()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--symbol", required=True)
    ap.add_argument("--hit", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    addr = symbol_address(args.elf, args.symbol)
    rsp = Rsp(args.port, args.timeout)
    bp = f"{addr:x},2"
    if rsp.cmd(f"Z0,{bp}") != "OK":
        raise SystemExit("gdb_cut: QEMU refused the breakpoint")
    hits = 0
    try:
        while True:
            stop = rsp.cmd("c")
            if not stop.startswith(("T05", "S05")):
                raise SystemExit(f"gdb_cut: unexpected stop {stop!r}")
            regs = rsp.cmd("g")
            pc = struct.unpack("<I", bytes.fromhex(regs[15 * 8:16 * 8]))[0]
            if pc != addr:
                continue  # some other stop (none expected): go on
            hits += 1
            if hits == args.hit:
                print(f"halted symbol={args.symbol} hit={hits} pc=0x{pc:08x}", flush=True)
                break
            # Step over the breakpoint: QEMU would report it again at once otherwise.
            rsp.cmd(f"z0,{bp}")
            rsp.cmd("s")
            rsp.cmd(f"Z0,{bp}")
    except (OSError, EOFError) as e:
        print(f"gdb_cut: stopped after {hits} hits: {e}", file=sys.stderr)
        sys.exit(1)
    # Keep the core halted until we are killed (with QEMU).
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
