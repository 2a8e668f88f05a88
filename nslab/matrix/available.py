"""`nslab matrix --list`: what each name resolves to in Debian's archive, and what is cached.

    nslab matrix --list
    5.10      linux-image-5.10.0-46-amd64        cached
    6.12      linux-image-6.12.118+deb13-amd64   not cached (downloaded on first use)
    trixie    linux-image-6.12.118+deb13-amd64   cached; userland: built 2026-11-30 (python3 3.13)
"""

from __future__ import annotations

import time

from nslab.matrix import archive, userland
from nslab.matrix.kernels import RELEASES, MatrixError

NAMES = ("5.10", "6.1", "6.12", "newest")


def lines() -> list[str]:
    rows = []
    for name in (*NAMES, *RELEASES):
        try:
            package = archive.package_for(name)
        except archive.ArchiveError as exc:
            rows.append((name, "-", f"not available: {exc}"))
            continue
        state = "cached" if any((archive.kernels_directory() / package).glob("boot/vmlinuz-*")) else "not cached (downloaded on first use)"
        if name in RELEASES:
            state += "; userland: " + _userland(name)
        rows.append((name, package, state))
    width = max(len(p) for _, p, _ in rows)
    return [f"{name:<9} {package:<{width}}  {state}" for name, package, state in rows]


def _userland(release: str) -> str:
    try:
        have = userland.python_version(release)
    except MatrixError as exc:
        return str(exc)
    python, need = f"python3 {have[0]}.{have[1]}", userland.needed_python()
    if have < need:
        return f"cannot run nslab ({python}; nslab needs {need[0]}.{need[1]})"
    root = userland.cached(release)
    if root is None:
        return f"not built ({python}; mmdebstrap builds it on first use)"
    return f"built {time.strftime('%Y-%m-%d %H:%M', time.localtime(root.joinpath('.nslab-complete').stat().st_mtime))} ({python})"
