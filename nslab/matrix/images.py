"""The Python that runs the suite in a matrix guest, as read-only erofs images on virtio-blk.

A guest that reads Python's standard library and the venv over 9p pays a round
trip to QEMU for every stat and open of an import (thousands per interpreter
start, and the suite starts hundreds of interpreters: the CNI plugins' helpers,
the web servers, the netcat stand-ins). From a block device the guest's own
kernel answers them from its page cache. So the directories Python imports from
(its standard library, without the test suite and the other parts nothing
imports, and the venv's site-packages) are packed with `mkfs.erofs` (erofs-utils)
into the shared cache, keyed by every file's path, size and modification time,
and mounted in the guest over the same paths.

    images.for_python(Path(sys.executable))  # [Image(~/.cache/nslab/images/stdlib-<key>.erofs, '/usr/lib/python3.11'), ...]

Without mkfs.erofs the guest reads them over 9p, as before (slower, the same verdicts).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from nslab.kernel import leftovers
from nslab.matrix import cache as shared
from nslab.matrix.kernels import MatrixError

# never imported by the suite: left out of the standard library's image (they stay readable over 9p)
UNIMPORTED = ("test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "config-*")
FORMAT = 1  # bump when the way an image is built changes


@dataclass(frozen=True)
class Image:
    path: Path  # the image file, in the shared cache
    mountpoint: str  # the directory it shows in the guest


def for_python(prefix: Path, stdlib: Path) -> list[Image]:
    """Images of *stdlib* (the interpreter's standard library) and of the venv at *prefix*
    (if the interpreter runs from one), built now where the cache has none; [] without mkfs.erofs."""
    if shutil.which("mkfs.erofs") is None:
        return []
    found = [_image("stdlib", stdlib, UNIMPORTED)]
    if prefix.resolve() != stdlib.parents[1].resolve():  # a venv: its site-packages
        found.append(_image("venv", prefix, ()))
    return found


def this_python() -> list[Image]:
    """`for_python` for the interpreter running nslab, as the host-userland columns run the suite."""
    return for_python(Path(sysconfig.get_paths()["data"]), Path(sysconfig.get_paths()["stdlib"]))


def _key(directory: Path, excluded: tuple[str, ...]) -> str:
    """What an image depends on: each file's path, size and modification time (a stat walk, no reads)."""
    digest = hashlib.sha256(repr((FORMAT, str(directory), excluded)).encode())
    for here, dirs, files in os.walk(directory):
        if Path(here) == directory:
            dirs[:] = [d for d in dirs if not any(Path(d).match(pattern) for pattern in excluded)]
        dirs.sort()
        for name in sorted(files):
            try:
                stat = os.lstat(os.path.join(here, name))
            except OSError:
                continue
            digest.update(f"{os.path.join(here, name)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _image(kind: str, directory: Path, excluded: tuple[str, ...]) -> Image:
    """`<kind>-<which directory>-<its contents>.erofs`: each checkout's venv has its own name, and a
    rebuild replaces only the image of the same directory."""
    which = hashlib.sha256(str(directory).encode()).hexdigest()[:8]
    image = shared.directory("images") / f"{kind}-{which}-{_key(directory, excluded)}.erofs"
    if not image.exists():
        with shared.lock(image):
            if not image.exists():  # nobody built it while we waited
                _build(image, directory, excluded)
    return Image(image, str(directory))


def _build(image: Path, directory: Path, excluded: tuple[str, ...]) -> None:
    partial = leftovers.partial_in(image.parent)
    try:
        skip = [f"--exclude-regex=^({'|'.join(p.replace('*', '.*') for p in excluded)})(/|$)"] if excluded else []
        done = subprocess.run(["mkfs.erofs", "--quiet", "-zlz4", *skip, str(partial), str(directory)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise MatrixError(f"mkfs.erofs {directory} failed (exit {done.returncode}): {lines[-1][:200] if lines else 'no output'}")
        for old in image.parent.glob(f"{image.name.rsplit('-', 1)[0]}-*.erofs"):
            shared.remove(old)  # an older build of the same directory, unless a run still uses it
        partial.rename(image)
    finally:
        if partial.exists():
            partial.unlink()
