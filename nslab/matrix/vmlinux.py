"""A Debian kernel as QEMU boots it fastest: its uncompressed ELF, entered at its PVH entry point.

A bzImage (Debian's `vmlinuz-*`) decompresses itself in the guest before the
kernel starts: emulated under TCG, 6.1's xz payload took 4.2 of the 6.5 s a
boot took to reach its root (QEMU's `-kernel` with nothing to mount). QEMU also
boots an ELF `vmlinux` that carries a PVH entry note (CONFIG_PVH, which Debian's
kernels set) directly in 32-bit mode, so the payload is decompressed once, here,
and kept beside the image in the kernel's cache entry (`boot/vmlinux-VERSION`);
that boot reached its root in 2.5 s. It is the same kernel: the payload is the
linked vmlinux whose `Linux version` line the guest prints.

The payload is found through the boot protocol's setup header (payload_offset
and payload_length), decompressed by its magic number (xz, gzip, bzip2, lzma
with Python's standard library; zstd, as Debian 13's kernels are, by the `zstd`
program), and kept only if its size is the one the kernel's build appends to
it and it is an ELF with the PVH note. Otherwise the bzImage boots as before.
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from nslab.kernel import leftovers

HDRS = b"HdrS"
PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point QEMU looks for (include/xen/interface/elfnote.h)


def bootable(image: Path) -> Path:
    """The kernel to boot for *image* (a bzImage in an unpacked kernel package): its
    uncompressed ELF where it can be had (made once, then reused), else *image* itself."""
    if shutil.which("strings") is None:
        return image  # virtme-ng reads an ELF's version with binutils' strings (a bzImage's with file)
    elf = image.with_name(image.name.replace("vmlinuz", "vmlinux", 1))
    if elf.is_file():
        return elf
    kernel = _uncompressed(image.read_bytes())
    if kernel is None or not has_pvh_entry(kernel):
        return image
    # Built aside and renamed into place: two runs may both write it (the same bytes), neither sees half of it.
    try:
        partial = leftovers.partial_in(image.parent)
        partial.mkdir()
        try:
            (partial / elf.name).write_bytes(kernel)
            os.replace(partial / elf.name, elf)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    except OSError:
        return image  # not kept (a full disk, the entry cleaned meanwhile): this boot decompresses in the guest
    return elf


def _uncompressed(bzimage: bytes) -> bytes | None:
    """The payload of a bzImage, decompressed; None if it is none or cannot be read here."""
    if bzimage[0x202:0x206] != HDRS or struct.unpack_from("<H", bzimage, 0x206)[0] < 0x208:
        return None  # no payload fields before boot protocol 2.08
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start : start + length]
    try:
        kernel = _decompress(payload)
    except (lzma.LZMAError, zlib.error, OSError, ValueError, subprocess.SubprocessError):
        return None
    # The build appends the uncompressed size (gzip's own trailer holds it too): a check on the whole.
    if kernel is None or len(payload) < 4 or len(kernel) != struct.unpack("<I", payload[-4:])[0]:
        return None
    return kernel


def _decompress(payload: bytes) -> bytes | None:
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    if payload.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(payload)
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    if payload.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(payload)
    if payload.startswith(b"\x28\xb5\x2f\xfd") and shutil.which("zstd"):
        # the appended size is no zstd frame: the program is given the frame alone
        done = subprocess.run(["zstd", "-d", "-c", "-q"], input=payload[:-4], capture_output=True, timeout=120, check=False)
        return done.stdout if done.returncode == 0 else None
    return None  # lz4, lzo, or zstd without the program: the bzImage boots as it is


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has a Xen PHYS32_ENTRY note (QEMU's PVH boot)."""
    if not elf.startswith(b"\x7fELF\x02\x01"):
        return False
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
        if p_type == PT_NOTE and _notes_have_pvh(elf[p_offset : p_offset + p_filesz]):
            return True
    return False


def _notes_have_pvh(notes: bytes) -> bool:
    at = 0
    while at + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, at)
        name = notes[at + 12 : at + 12 + namesz].rstrip(b"\x00")
        if name == b"Xen" and kind == XEN_ELFNOTE_PHYS32_ENTRY:
            return True
        at += 12 + _aligned(namesz) + _aligned(descsz)
    return False


def _aligned(n: int) -> int:
    return (n + 3) & ~3


__all__ = ["bootable", "has_pvh_entry"]
