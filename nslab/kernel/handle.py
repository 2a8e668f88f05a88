"""One lab namespace as the kernel holds it, and the error a refused step raises."""

from __future__ import annotations

import errno as errno_mod
import os

from nslab.kernel import linux, rtnl


class KernelError(RuntimeError):
    """The kernel refused a step; says which `ip` command and why, in one line."""

    def __init__(self, command: str, err: int, detail: str = ""):
        self.command = command
        self.errno = err
        name = errno_mod.errorcode.get(err, str(err))
        super().__init__(f"{command}: {os.strerror(err)} ({name}){'; ' + detail if detail else ''}")


class NsHandle:
    """A namespace: an fd, a bind mount under the sandbox's /run/netns, and a
    netlink socket opened inside it.

    It caches interface indexes by name, and remembers which links were set
    up while without carrier (their transmit queue waits for the kernel's
    linkwatch once carrier comes: see Kernel.wait_ready)."""

    def __init__(self, name: str, fd: int, path: str, sock: rtnl.RtnlSocket):
        self.name = name
        self.fd = fd
        self.path = path
        self.rtnl = sock
        self._index: dict[str, int] = {}
        self._inactive: set[str] = set()
        self.holds_ipv6 = False  # an IPv6 address was added here: Kernel.wait_ready waits for its DAD to complete

    def __repr__(self) -> str:
        return f"<NsHandle {self.name}>"

    # -- interface indexes ------------------------------------------------------
    def index(self, dev: str) -> int:
        """The ifindex of *dev* here (`ip link show DEV`), cached until renamed, moved
        or deleted. A miss reads every link's index at once (one dump), so a
        namespace with a hundred new veths costs one round trip, not a hundred."""
        if dev not in self._index:
            try:
                dump = self.rtnl.dump(rtnl.RTM_GETLINK, rtnl.ifinfomsg() + rtnl.u32(rtnl.IFLA_EXT_MASK, rtnl.RTEXT_FILTER_SKIP_STATS))
            except rtnl.NetlinkError as exc:
                raise KernelError(f"ip -n {self.name} link show {dev}", exc.code, exc.message) from None
            self._index.update({m.text(rtnl.IFLA_IFNAME) or "": m.body["index"] for m in dump})
            if dev not in self._index:
                raise KernelError(f"ip -n {self.name} link show {dev}", errno_mod.ENODEV, f"no interface {dev!r} in {self.name!r}")
        return self._index[dev]

    def remember(self, indexes: dict[str, int]) -> None:
        """What a link dump said: name -> ifindex."""
        self._index.update(indexes)

    def forget(self, dev: str) -> None:
        self._index.pop(dev, None)

    # -- links waiting for the kernel to activate them ------------------------------
    def expect_activation(self, dev: str) -> None:
        """*dev* was set up without carrier, or is about to lose it (its peer went down)."""
        self._inactive.add(dev)

    def activated(self, dev: str) -> None:
        self._inactive.discard(dev)

    def awaiting_activation(self) -> frozenset[str]:
        return frozenset(self._inactive)

    # -- end ---------------------------------------------------------------------------
    def close_socket(self) -> None:
        self.rtnl.close()

    def release(self) -> None:
        """`ip netns del`: close the socket, unmount the name, close the fd; the
        kernel destroys the namespace once nothing else holds it."""
        self.rtnl.close()
        linux.umount(self.path)
        os.unlink(self.path)
        os.close(self.fd)
