"""The kernel a matrix VM boots (nslab.matrix.vmlinux): a bzImage's payload, decompressed once
into the ELF that QEMU enters at its PVH note, and the bzImage itself whenever that ELF cannot
be had whole. The images here are built as the kernel's build lays them out (the setup header's
payload fields, the uncompressed size appended to the payload); that a real Debian kernel boots
this way is the VM smoke test's (tests/test_matrix.py: its guest reports boot protocol 0x020c)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from nslab.matrix import vmlinux

pytestmark = pytest.mark.skipif(shutil.which("strings") is None, reason="virtme-ng reads an ELF kernel's version with strings (binutils)")


def elf(*, pvh: bool = True) -> bytes:
    """A 64-bit ELF whose one program header is a PT_NOTE: a Xen PHYS32_ENTRY note (QEMU's PVH entry), or another."""
    note = struct.pack("<III", 4, 4, vmlinux.XEN_ELFNOTE_PHYS32_ENTRY if pvh else 6) + b"Xen\x00" + struct.pack("<I", 0x1000000)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", vmlinux.PT_NOTE, 4, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(header) + phdr + note + b"\x90" * 4096


def compress(kind: str, data: bytes) -> bytes:
    if kind == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return {"xz": lambda d: lzma.compress(d, check=lzma.CHECK_CRC32), "gzip": gzip.compress, "bzip2": bz2.compress}[kind](data)


def bzimage(payload: bytes, *, size: int | None) -> bytes:
    """A bzImage with one setup sector after the boot sector and *payload* (its size appended, as the build does)."""
    if size is not None:
        payload += struct.pack("<I", size)
    setup = bytearray(2 * 512)
    setup[0x1F1] = 1
    setup[0x202:0x206] = vmlinux.HDRS
    struct.pack_into("<H", setup, 0x206, 0x020F)
    struct.pack_into("<II", setup, 0x248, 16, len(payload))  # payload_offset (from the protected-mode code), payload_length
    return bytes(setup) + b"\x00" * 16 + payload + b"\x00" * 64


def unpacked(tmp_path: Path, image: bytes) -> Path:
    path = tmp_path / "kernels" / "linux-image-6.1.0-test-amd64" / "boot" / "vmlinuz-6.1.0-test-amd64"
    path.parent.mkdir(parents=True)
    path.write_bytes(image)
    return path


@pytest.mark.parametrize("kind", ["xz", "gzip", "bzip2", "zstd"])
def test_the_payload_is_decompressed_once_into_the_elf_beside_the_image(tmp_path, kind):
    if kind == "zstd" and shutil.which("zstd") is None:
        pytest.skip("zstd payloads are decompressed by the zstd program, which is not installed")
    kernel = elf()
    image = unpacked(tmp_path, bzimage(compress(kind, kernel), size=len(kernel)))
    booted = vmlinux.bootable(image)
    assert booted == image.with_name("vmlinux-6.1.0-test-amd64") and booted.read_bytes() == kernel
    made = booted.stat().st_mtime_ns
    assert vmlinux.bootable(image) == booted and booted.stat().st_mtime_ns == made  # kept, not made again
    assert sorted(p.name for p in image.parent.iterdir()) == ["vmlinux-6.1.0-test-amd64", "vmlinuz-6.1.0-test-amd64"]  # no partial left


@pytest.mark.parametrize(
    ("why", "image"),
    [
        ("no PVH note: QEMU could not enter it", bzimage(compress("xz", elf(pvh=False)), size=len(elf(pvh=False)))),
        ("the appended size is not the decompressed one", bzimage(compress("xz", elf()), size=len(elf()) - 1)),
        ("a truncated payload", bzimage(compress("xz", elf())[:-20], size=len(elf()))),
        ("a compression read by nothing here (lz4)", bzimage(b"\x02\x21\x4c\x18" + b"\x00" * 64, size=len(elf()))),
        ("no setup header", b"\x00" * 4096),
    ],
)
def test_a_kernel_whose_elf_cannot_be_had_whole_boots_as_its_bzimage(tmp_path, why, image):
    path = unpacked(tmp_path, image)
    assert vmlinux.bootable(path) == path, why
    assert [p.name for p in path.parent.iterdir()] == [path.name]
