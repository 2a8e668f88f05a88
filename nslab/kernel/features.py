"""Does this kernel have what a scenario needs? Probed, not guessed from versions.

Each probe creates the thing in a throwaway network namespace (a forked child
that unshares its own, inside the caller's sandbox) and reports the kernel's
answer, so a kernel booted with `module_blacklist=bridge`, or built without
the feature, is named as lacking it instead of failing half-way through a lab.

Only the kernel saying it lacks the feature (EOPNOTSUPP: no such link kind,
its module missing or blacklisted; EAFNOSUPPORT, EPROTONOSUPPORT) counts as
missing. Anything else (EPERM, ENOMEM, a namespace that cannot be made, an
import error) means the probe could not tell, and raises FeatureProbeError
with the reason: a skip would hide it. Answers are cached per process (the
kernel does not change under a run); errors are not.

    missing("bridge")  # None, or "creating a bridge failed: ENOTSUP (Operation not supported)"
"""

from __future__ import annotations

import errno
import functools
import os

from nslab.kernel import child, rtnl

IFLA_VXLAN_ID = 1


def payload(kind: str, *, peer: str | None = None, vxlan_id: int | None = None) -> bytes:
    """RTM_NEWLINK's payload for `ip link add nsprobe0 type KIND [peer name PEER] [id VXLAN_ID]`."""
    data = rtnl.attr(rtnl.VETH_INFO_PEER, rtnl.ifinfomsg() + rtnl.text(rtnl.IFLA_IFNAME, peer)) if peer else b""
    data += rtnl.u32(IFLA_VXLAN_ID, vxlan_id) if vxlan_id is not None else b""
    info = rtnl.text(rtnl.IFLA_INFO_KIND, kind, nul=False) + (rtnl.attr(rtnl.IFLA_INFO_DATA, data) if data else b"")
    return rtnl.ifinfomsg() + rtnl.text(rtnl.IFLA_IFNAME, "nsprobe0") + rtnl.attr(rtnl.IFLA_LINKINFO, info)


# feature name -> (what the probe does, in words; the link it creates, as RTM_NEWLINK's payload)
FEATURES: dict[str, tuple[str, bytes]] = {
    "bridge": ("creating a bridge", payload("bridge")),
    "veth": ("creating a veth pair", payload("veth", peer="nsprobe1")),
    "vxlan": ("creating a vxlan device", payload("vxlan", vxlan_id=42)),
}
# The kernel's own "I do not have that": a feature is missing only on one of these.
LACKING = frozenset({errno.EOPNOTSUPP, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT})
PROBE_TIMEOUT = 30.0  # seconds: milliseconds on an idle machine


class FeatureProbeError(Exception):
    """The probe failed for a reason other than the kernel lacking the feature (one line)."""


def check_name(feature: str) -> None:
    """Raise ValueError naming the known features if *feature* is not one of them."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; known: {', '.join(sorted(FEATURES))}")


@functools.cache
def missing(feature: str) -> str | None:
    """None if the running kernel supports *feature*, else why not (one line).

    Raises FeatureProbeError when the probe itself failed (the answer is unknown)."""
    check_name(feature)
    what, link = FEATURES[feature]
    lacking, error = _in_throwaway_netns(link)
    if error is None:
        return None
    if lacking:
        return f"{what} failed: {error}"
    raise FeatureProbeError(f"probing {feature} support ({what}) failed: {error}; that is not the kernel lacking {feature}, so the test cannot be skipped")


def bridge_supported() -> bool:
    return missing("bridge") is None


def _in_throwaway_netns(link: bytes) -> tuple[bool, str | None]:
    """Create *link* in a forked child's new network namespace: (the kernel lacks it, the error text or None)."""
    try:
        child.run(_add_link, link, netns=child.FRESH, timeout=PROBE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the kernel's answer, or why the probe could not tell
        return _code(exc) in LACKING, _describe(exc)
    return False, None


def _add_link(link: bytes) -> None:
    """nslab's own netlink, not pyroute2's: with pyroute2's import the bridge test's setup took
    23.9 s in a TCG guest (bpftrace compiling beside it), with this 0.46 s."""
    sock = rtnl.RtnlSocket()
    try:
        sock.request(rtnl.RTM_NEWLINK, link, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL)
    finally:
        sock.close()


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    return code if isinstance(code, int) and code > 0 else None


def _describe(exc: BaseException) -> str:
    """'EOPNOTSUPP (Operation not supported)' for an OSError (NetlinkError is one)."""
    code = _code(exc)
    if code is not None:
        return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
