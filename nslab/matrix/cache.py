"""nslab's cache, shared by every checkout and install of nslab on this machine:
`$XDG_CACHE_HOME/nslab` (`~/.cache/nslab` by default).

    cache.directory("kernels")            # ~/.cache/nslab/kernels, created
    with cache.lock(tree):                # one builder at a time, across processes
        ...
    with cache.lock(tree, shared=True):   # in use: `nslab cache clean` leaves it alone

It holds what the kernel matrix downloads or builds: Debian's kernels (`kernels/`),
nslab's private apt directory (`apt/`), the release userlands (`userlands/`), and
a remembered KVM verdict. Every entry is keyed by
its inputs (a package name, a hash of what went into a root) and built under a
`.partial-<run>` name (nslab.kernel.leftovers.partial_in) that is renamed into
place when complete, so a half-built entry never counts. An entry's lock is a
`<entry>.lock` file beside it, held with `fcntl.flock`: exclusively while it is
built or removed, shared while a VM uses it; the kernel drops a lock with its
holder, so a killed run never leaves one held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

LOCK = ".lock"


def root() -> Path:
    """`$XDG_CACHE_HOME/nslab`, or `~/.cache/nslab` (the XDG base directory specification's default);
    read at each call, so a test or a user can point it elsewhere."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "nslab"


def directory(kind: str) -> Path:
    """The cache's directory for one kind of entry ('kernels', 'apt', 'userlands', ...), created."""
    path = root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def lock(entry: Path, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """Hold *entry*'s lock; yields False (without holding it) if *wait* is off and another process holds it."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.with_name(entry.name + LOCK), "a") as file:
        try:
            fcntl.flock(file, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int  # bytes on disk, each hard-linked file counted once

    @property
    def name(self) -> str:
        return str(self.path.relative_to(root()))


def entries() -> list[Entry]:
    """What the cache holds, one entry per kernel, userland, image or apt directory (complete ones only)."""
    found = []
    top = root()
    if not top.is_dir():
        return []
    for kind in sorted(top.iterdir()):
        if kind.name.endswith(LOCK) or kind.name.startswith(".partial-"):
            continue
        children = sorted(kind.iterdir()) if kind.is_dir() and kind.name != "apt" else [kind]
        found += [Entry(child, _size(child)) for child in children if not child.name.endswith(LOCK) and not child.name.startswith(".partial-")]
    return found


def _size(path: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for here, _, files in os.walk(path) if path.is_dir() else [(str(path.parent), [], [path.name])]:
        for name in files:
            try:
                stat = os.lstat(os.path.join(here, name))
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def remove(entry: Path) -> bool:
    """Remove *entry* unless a run holds it (building it, or a VM using it); True if removed."""
    with lock(entry, wait=False) as mine:
        if not mine:
            return False
        # the lock file stays: removing it would let a waiter on the old file and a newcomer on a new one both hold "the" lock
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
    return True


def human(size: int) -> str:
    """'812 B', '1.5 MiB', '2.3 GiB'."""
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"
