"""`ethtool -S DEV` without the ethtool binary: a driver's own statistics
through the SIOCETHTOOL ioctl (ethtool's netlink family carries only the
standard statistics groups, not the driver's named counters).

A veth's first statistic is `peer_ifindex`: the ifindex of its other end, in
the other end's namespace, which is how tutorial 004 finds a container's eth0
from the host's vethXXX.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETHTOOL_GSSET_INFO = 0x37
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32


def stats(dev: str) -> dict[str, int]:
    """Statistic name -> value for *dev* in the calling thread's namespace."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            count = _count(sock, dev)
            if not count:
                return {}
            names = ctypes.create_string_buffer(12 + count * ETH_GSTRING_LEN)
            struct.pack_into("=III", names, 0, ETHTOOL_GSTRINGS, ETH_SS_STATS, count)
            _ioctl(sock, dev, names)
            values = ctypes.create_string_buffer(8 + count * 8)
            struct.pack_into("=II", values, 0, ETHTOOL_GSTATS, count)
            _ioctl(sock, dev, values)
    except OSError as exc:
        raise OSError(exc.errno, f"ethtool -S {dev}: {os.strerror(exc.errno or 0)}") from None
    labels = [names.raw[12 + i * ETH_GSTRING_LEN : 12 + (i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode() for i in range(count)]
    return dict(zip(labels, struct.unpack_from(f"={count}Q", values, 8)))


def _count(sock: socket.socket, dev: str) -> int:
    """How many statistics the driver has (ETHTOOL_GSSET_INFO for the stats set)."""
    info = ctypes.create_string_buffer(20)
    struct.pack_into("=IIQI", info, 0, ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_STATS, 0)
    _ioctl(sock, dev, info)
    mask, count = struct.unpack_from("=QI", info, 8)
    return count if mask & (1 << ETH_SS_STATS) else 0


def _ioctl(sock: socket.socket, dev: str, data: ctypes.Array[ctypes.c_char]) -> None:
    """SIOCETHTOOL on *dev*: a struct ifreq whose ifr_data points at *data*."""
    ifreq = struct.pack("16sP16x", dev.encode(), ctypes.addressof(data))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
