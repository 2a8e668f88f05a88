"""`ip neigh show proxy`: the addresses a namespace answers ARP for on behalf of others.

Proxy entries (`ip neigh add proxy ADDR dev DEV`) are not part of an ordinary
neighbour dump; the request must carry NTF_PROXY.
"""

from __future__ import annotations

import socket
import struct

from nslab.kernel import linux

NLMSG_HDRLEN, NLMSG_ERROR, NLMSG_DONE = 16, 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NDA_DST = 1
NTF_PROXY = 0x08


def proxy_entries(netns_fd: int) -> list[tuple[int, str]]:
    """(ifindex, IPv4 address) of each proxy ARP entry in the namespace of *netns_fd*."""
    with linux.in_netns(netns_fd):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    with sock:
        ndmsg = struct.pack("=BxxxiHBB", socket.AF_INET, 0, 0, NTF_PROXY, 0)
        sock.send(struct.pack("=IHHII", NLMSG_HDRLEN + len(ndmsg), RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + ndmsg)
        out: list[tuple[int, str]] = []
        while True:
            data = sock.recv(1 << 16)
            off = 0
            while off + NLMSG_HDRLEN <= len(data):
                length, typ = struct.unpack_from("=IH", data, off)
                if typ == NLMSG_DONE:
                    return out
                if typ == NLMSG_ERROR:
                    raise OSError(-struct.unpack_from("=i", data, off + NLMSG_HDRLEN)[0], "ip neigh show proxy failed")
                if typ == RTM_NEWNEIGH:
                    _, index, _, flags, _ = struct.unpack_from("=BxxxiHBB", data, off + NLMSG_HDRLEN)
                    attr = off + NLMSG_HDRLEN + 12
                    while attr + 4 <= off + length:
                        alen, atype = struct.unpack_from("=HH", data, attr)
                        if atype == NDA_DST and alen == 8 and flags & NTF_PROXY:
                            out.append((index, socket.inet_ntoa(data[attr + 4 : attr + 8])))
                        attr += (alen + 3) & ~3
                off += (length + 3) & ~3
