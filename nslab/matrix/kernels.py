"""Which kernels a matrix runs: `host`, a Debian version (`6.1`, `6.12-rt`, `newest`), a Debian
release's userland with its own kernel (`bookworm`, `trixie`), boot arguments after commas."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Debian releases whose userland (iproute2, nftables, iputils, Python) a matrix column can run in,
# each on that release's own kernel.
RELEASES = ("bullseye", "bookworm", "trixie", "sid")


class MatrixError(Exception):
    """Bad input or a missing tool; the message is one line saying how to fix it."""


# -- kernels -----------------------------------------------------------------
@dataclass(frozen=True)
class Kernel:
    label: str  # as given on the command line
    name: str  # 'host', '6.1', '6.1-cloud', 'linux-image-...', or a release in RELEASES
    append: tuple[str, ...] = ()  # extra kernel command-line arguments

    @property
    def userland(self) -> str | None:
        """The Debian release whose root filesystem the guest runs, or None for this machine's."""
        return self.name if self.name in RELEASES else None

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]+", "_", self.label)


def parse_kernel(text: str) -> Kernel:
    name, *append = text.split(",")
    if name == "host":
        if append:
            raise MatrixError(f"kernel {text!r}: the host kernel cannot take boot arguments; use a Debian kernel such as 6.1,{append[0]}")
    elif not (name.startswith("linux-image-") or name in RELEASES or re.fullmatch(r"(\d+\.\d+|newest)(-(cloud|rt))?", name)):
        raise MatrixError(f"kernel {text!r}: expected host, a Debian version such as 6.1, 6.1-cloud, 6.1-rt, 6.12, newest, a linux-image-* package name, or a release's userland: {', '.join(RELEASES)}")
    return Kernel(text, name, tuple(a for a in append if a))
