"""Why an address the lab gave a device is not there, as the kernel shows it.

The kernel removes addresses for reasons of its own, and each leaves a trace to
read: a device that is gone; for IPv6, a device that is down (unless it keeps its
addresses, `keep_addr_on_down`), a device the kernel took IPv6 off (its
`net.ipv6.conf.DEV` directory is gone: an MTU below IPv6's minimum of 1280 does
that, addresses and all), or `disable_ipv6` set on it. Only where no such trace is
read is the address itself named as absent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nslab.diagnosis.reads import Reads
from nslab.diagnosis.stages import cmd, link_up, lost_addresses6, with_lost_routes
from nslab.model.topology import Address
from nslab.probes.result import Claim, Remedy

IPV6_MIN_MTU = 1280


@dataclass(frozen=True)
class Absence:
    """Why the lab's address is missing: in words ("" where only its absence was read), the claims read, and the fix."""

    words: str
    claims: tuple[Claim, ...]
    fixes: tuple[Remedy, ...]


def absent(reads: Reads, ns: str, address: Address) -> Absence:
    """The lab's *address* (model.Address) on its device in *ns*, which the kernel does not hold."""
    dev, cidr = address.dev, address.cidr
    add = f"ip addr add {cidr} dev {dev}"
    link = reads.link(ns, dev)
    if link is None:
        return Absence(f"{ns} has no link {dev} to hold {cidr}", (Claim(ns, f"link {dev}", "absent", dev=dev, blames=True),), ())
    if address.interface.version == 6:
        if not link.up:  # a device going down takes its IPv6 addresses with it, unless keep_addr_on_down
            keep = f"net.ipv6.conf.{dev}.keep_addr_on_down"
            return Absence(
                f"{dev} is down, and the kernel removed its IPv6 addresses with it ({keep}={reads.sysctl(ns, keep)}); {cmd(ns, 'ip link set', dev, 'up')}",
                (Claim(ns, f"link {dev}", "down", dev=dev, blames=True),),
                (link_up(reads, ns, dev),),
            )
        if reads.sysctl(ns, f"net.ipv6.conf.{dev}.disable_ipv6") is None:  # the kernel holds no IPv6 state for the device
            conf = Claim(ns, f"sysctl net.ipv6.conf.{dev}", "absent", dev=dev)
            if link.mtu < IPV6_MIN_MTU:
                fix = with_lost_routes(reads, ns, dev, f"ip link set dev {dev} mtu 1500 && {add} nodad", f"ip addr del {cidr} dev {dev} && ip link set dev {dev} mtu {link.mtu}", [address.interface.network])
                return Absence(
                    f"{dev}'s MTU is {link.mtu}, below IPv6's minimum of {IPV6_MIN_MTU}, so the kernel took IPv6 off {dev} and its address {cidr} with it",
                    (Claim(ns, f"link {dev}", f"mtu {link.mtu}", dev=dev, blames=True), conf),
                    (fix,),
                )
            return Absence(f"the kernel holds no IPv6 state for {dev} (no net.ipv6.conf.{dev}), so it holds no {cidr}", (conf,), ())
        key = disabling(reads, ns, dev)
        if key is not None:
            return Absence(f"{key}=1 there: IPv6 is disabled on {dev}, which removed {cidr}", (Claim(ns, f"sysctl {key}", "1", dev=dev, blames=True),), (ipv6_back(reads, ns, key, dev),))
    fix = with_lost_routes(reads, ns, dev, add, f"ip addr del {cidr} dev {dev}", [address.interface.network])
    return Absence("", (Claim(ns, f"address {cidr} dev {dev}", "absent", dev=dev, blames=True),), (fix,))


def disabling(reads: Reads, ns: str, dev: str) -> str | None:
    """The `disable_ipv6` key set to 1 that disables IPv6 on *dev*; `all` first (writing it sets every device's)."""
    return next((key for key in ("net.ipv6.conf.all.disable_ipv6", f"net.ipv6.conf.{dev}.disable_ipv6") if reads.sysctl(ns, key) == "1"), None)


def ipv6_back(reads: Reads, ns: str, key: str, dev: str) -> Remedy:
    """`sysctl -w KEY=0` for a `disable_ipv6` *key*, then the lab's IPv6 addresses and routes the
    kernel removed with it: on *dev*, or on every device where *key* is the `all` one."""
    devs = sorted({a.dev for a in reads.view.topology.addresses if a.ns == ns and a.interface.version == 6}) if ".all." in key else [dev]
    do, undo = [f"sysctl -w {key}=0"], [f"sysctl -w {key}=1"]
    for each in devs:
        lost = lost_addresses6(reads, ns, each)
        if not lost:
            continue
        back = with_lost_routes(reads, ns, each, " && ".join(f"ip addr add {a.cidr} dev {each} nodad" for a in lost), " && ".join(f"ip addr del {a.cidr} dev {each}" for a in lost), [a.interface.network for a in lost])
        do.append(back.command)
        undo.insert(0, back.undo)
    return Remedy(ns, " && ".join(dict.fromkeys(" && ".join(do).split(" && "))), " && ".join(undo), dev)


def stray(reads: Reads, ns: str, ip: str) -> Absence | None:
    """*ns* holds *ip* itself, which the lab gives another namespace (and not *ns*): so *ns*
    takes packets meant for that one. The address here is what to change; None otherwise."""
    wanted = ipaddress.ip_address(ip)
    held = next((a for a in reads.addresses(ns) if ipaddress.ip_address(a.ip) == wanted), None)
    model = reads.view.topology.addresses
    owner = next((a.ns for a in model if a.ns != ns and a.interface.ip == wanted), None)
    if held is None or owner is None or any(a.ns == ns and a.interface.ip == wanted for a in model):
        return None
    return Absence(
        f"{ns} holds {held.ip} itself ({held.cidr} on {held.dev}), an address the lab gives {owner}",
        (Claim(ns, f"address {held.cidr} dev {held.dev}", "present", dev=held.dev, blames=True),),
        (Remedy(ns, f"ip addr del {held.cidr} dev {held.dev}", f"ip addr add {held.cidr} dev {held.dev}", held.dev),),
    )
