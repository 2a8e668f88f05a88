"""Does this kernel have what a scenario needs? Probed, not guessed from versions.

Each probe creates the thing in a throwaway network namespace (a forked child
that unshares its own, inside the caller's sandbox) and reports the kernel's
answer, so a kernel booted with `module_blacklist=bridge`, or built without
the feature, is named as lacking it instead of failing half-way through a lab.
Answers are cached per process: the kernel does not change under a run.

    missing("bridge")  # None, or "creating a bridge failed: [Errno 95] ..."
"""

from __future__ import annotations

import errno
import functools
import os

from nslab.kernel import linux

# feature name -> (what the probe does, in words; the link the probe creates)
FEATURES: dict[str, tuple[str, dict]] = {
    "bridge": ("creating a bridge", {"kind": "bridge"}),
    "veth": ("creating a veth pair", {"kind": "veth", "peer": "nsprobe1"}),
    "vxlan": ("creating a vxlan device", {"kind": "vxlan", "vxlan_id": 42}),
}


def check_name(feature: str) -> None:
    """Raise ValueError naming the known features if *feature* is not one of them."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; known: {', '.join(sorted(FEATURES))}")


@functools.cache
def missing(feature: str) -> str | None:
    """None if the running kernel supports *feature*, else why not (one line)."""
    check_name(feature)
    what, link = FEATURES[feature]
    error = _in_throwaway_netns(link)
    return None if error is None else f"{what} failed: {error}"


def bridge_supported() -> bool:
    return missing("bridge") is None


def _in_throwaway_netns(link: dict) -> str | None:
    """Create *link* in a new network namespace of a forked child; the error text, or None."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            os.close(read_end)
            linux.die_with_parent()
            linux.unshare(linux.CLONE_NEWNET)
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                ipr.link("add", ifname="nsprobe0", **link)
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            os.write(write_end, _describe(exc).encode()[:500])
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return message or f"probe exited with status {os.waitstatus_to_exitcode(status)}"


def _describe(exc: BaseException) -> str:
    """'EOPNOTSUPP (Operation not supported)' for an OSError or pyroute2's NetlinkError."""
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"
    return str(exc) or type(exc).__name__
