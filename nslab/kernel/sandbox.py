"""The run's private world: new network and mount namespaces (and a user
namespace when not root), with a private /run/netns.

Every lab namespace is created from inside the sandbox and bind-mounted only
in its private mount namespace, so:

- no packet of a lab can reach the real network (the sandbox's own network
  namespace has nothing but a loopback), and no name can collide with the
  host or with another pytest-xdist worker;
- when the process ends, however it ends (even `kill -9`), the kernel drops
  the mount namespace, the bind mounts and so every lab namespace with it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from nslab.kernel import leftovers, linux

NETNS_DIR = "/run/netns"
HOW_TO_RUN = (
    "run as root (sudo ./run scenarios), or enable unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1), or use the Vagrant VM (vagrant up)"
)


class SandboxUnavailable(RuntimeError):
    """This process cannot get private namespaces; the message says how to fix it."""


@dataclass(frozen=True)
class Sandbox:
    pid: int
    netns_dir: str
    home: int  # fd of the sandbox's own network namespace
    rootless: bool
    outside: tuple[int, int]  # fds of the network and mount namespaces the process came from
    isolated: bool = True  # home is a network namespace of the sandbox's own (see enter's network)


_current: Sandbox | None = None
_lock = threading.Lock()


def current() -> Sandbox | None:
    """The sandbox this process entered, if any (a forked child has none of its own)."""
    return _current if _current is not None and _current.pid == os.getpid() else None


def enter(*, network: bool = True) -> Sandbox:
    """Move this process into a new sandbox, once; later calls return the same one.

    *network=False*: a private mount namespace only (its own /run/netns); the
    process stays in the network namespace it is in, which becomes the
    sandbox's home. For a process whose lab only adopts namespaces made
    elsewhere and opens nothing outside them (a grader): a network namespace
    costs some 3 ms of CPU to make, and the kernel's work to destroy it."""
    global _current
    with _lock:
        if current() is not None:
            if network and not _current.isolated:  # type: ignore[union-attr]
                raise SandboxUnavailable("this process entered its sandbox without a network namespace of its own (enter(network=False)); it cannot get one now")
            return _current  # type: ignore[return-value]
        rootless = os.geteuid() != 0 or _in_child_user_namespace()
        outside = (linux.netns_fd(), os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        if os.geteuid() != 0:
            become_root_in_user_namespace()
        _unshare(linux.CLONE_NEWNS | (linux.CLONE_NEWNET if network else 0))
        # Our mounts must never propagate back to the host's mount namespace.
        linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
        netns_dir = _private_netns_dir()
        leftovers.mark_this_run()
        _current = Sandbox(os.getpid(), netns_dir, linux.netns_fd(), rootless, outside, network)
        return _current


def _unshare(flags: int) -> None:
    try:
        linux.unshare(flags)
    except PermissionError as exc:
        raise SandboxUnavailable(f"cannot create private namespaces ({exc.strerror}); {HOW_TO_RUN}") from None


def become_root_in_user_namespace() -> None:
    """Not root: become root of a new user namespace (uid and gid mapped to ours).

    Only a single-threaded process may do this, so the pytest plugin calls it
    early in the main process; xdist workers, its children, inherit it.
    """
    if threading.active_count() > 1 or len(os.listdir("/proc/self/task")) > 1:
        raise SandboxUnavailable(
            "not root, and a user namespace can only be entered by a single-threaded process; "
            "start the run through pytest or ./run, which enter it first"
        )
    uid, gid = os.geteuid(), os.getegid()
    try:
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as exc:
        raise SandboxUnavailable(
            f"not root and unprivileged user namespaces are not available ({exc.strerror}); {HOW_TO_RUN}"
        ) from None
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _in_child_user_namespace() -> bool:
    with open("/proc/self/uid_map") as f:
        return f.read().split() != ["0", "0", "4294967295"]


def _private_netns_dir() -> str:
    """A tmpfs on /run/netns visible to this process only (so `ip netns exec`
    works inside the sandbox and sees only this run's labs)."""
    try:
        os.makedirs(NETNS_DIR, exist_ok=True)
        linux.mount("tmpfs", NETNS_DIR, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "mode=0755,size=1m")
    except OSError:
        # Rootless with no /run/netns on the host: cover /run (privately) instead.
        linux.mount("tmpfs", "/run", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=4m")
        os.makedirs(NETNS_DIR)
    return NETNS_DIR


def from_outside(argv: list[str]) -> list[str]:
    """*argv* to run in the network and mount namespaces this process came from
    (the host's, as a user would run it), if it is inside its sandbox: e.g. a
    test that runs `nslab matrix`, which fetches kernels from the package archive."""
    box = current()
    if box is None:
        return list(argv)
    net, mnt = (f"/proc/{box.pid}/fd/{fd}" for fd in box.outside)
    return ["nsenter", f"--net={net}", f"--mount={mnt}", "--", *argv]


def capability() -> str | None:
    """None when labs can be built here, else one sentence saying how to run them."""
    if os.geteuid() == 0:
        return None
    if current() is not None:
        return None
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return f"not root and user namespaces are disabled (user.max_user_namespaces=0); {HOW_TO_RUN}"
    except OSError:
        pass
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return f"not root and unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); {HOW_TO_RUN}"
    except OSError:
        pass
    return None


__all__ = ["Sandbox", "SandboxUnavailable", "become_root_in_user_namespace", "capability", "current", "enter", "from_outside"]

