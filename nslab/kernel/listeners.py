"""`ss -ltn sport = :PORT`: is a TCP listener on a port, read from /proc/net/tcp and tcp6."""

from __future__ import annotations

from nslab.kernel import linux

LISTEN = "0A"  # the `st` column of a socket in state LISTEN


def listens_in(table: str, port: int) -> bool:
    """Does *table* (the text of a /proc/.../net/tcp or tcp6 file) list a listener on *port*?"""
    for line in table.splitlines()[1:]:
        fields = line.split()  # sl local_address rem_address st ...
        if len(fields) > 3 and fields[1].endswith(f":{port:04X}") and fields[3] == LISTEN:
            return True
    return False


def listening(netns_fd: int, port: int) -> bool:
    """Is anything in the namespace of *netns_fd* listening on TCP *port*?"""
    with linux.in_netns(netns_fd):
        with open("/proc/thread-self/net/tcp") as f4, open("/proc/thread-self/net/tcp6") as f6:
            tables = f4.read(), f6.read()
    return any(listens_in(table, port) for table in tables)
