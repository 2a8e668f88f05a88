"""One namespace of a lab: a face over its parts, with the flat ip(8)-like methods
that make scenarios read like the tutorials (`ns.add_route`, `ns.ping`).

The face owns no state of its own. Each piece has one owner, reached through
a back-pointer to the face (`part.ns`):

- its steps (nslab/lab/steps.py, the face's own methods, no state): changes
  made through `Lab.apply`;
- `readback` (readback.py): what the kernel reports, and the namespace's inode;
- `processes` (processes.py): commands and servers run inside it;
- `probing` (probing.py): the probes, and the sockets and capture they keep.
"""

from __future__ import annotations

import socket
import subprocess
from typing import TYPE_CHECKING, Iterable

from nslab.diagnosis.capture import Capture
from nslab.kernel.state import AddressState, FdbEntry, LinkState, NeighbourState, RouteLookup, RouteState
from nslab.lab.probing import Probing
from nslab.lab.processes import Processes
from nslab.lab.readback import Readback
from nslab.lab.steps import Steps

if TYPE_CHECKING:
    from nslab.kernel.handle import NsHandle
    from nslab.kernel.process import Process
    from nslab.lab.live import Lab
    from nslab.probes.result import Result


class Netns(Steps):
    """`lab.ns(NAME)`: steps, reads, processes and probes inside one namespace."""

    def __init__(self, lab: Lab, name: str, handle: NsHandle):
        self.lab = lab
        self.name = name
        self.handle = handle
        self.readback = Readback(self)
        self.processes = Processes(self)
        self.probing = Probing(self)

    def __repr__(self) -> str:
        return f"<Netns {self.name}>"

    @property
    def path(self) -> str:
        """For `ip netns exec` / `nsenter --net=` inside the sandbox."""
        return self.handle.path

    @property
    def inode(self) -> int:
        """This namespace's inode (`ls -iL /run/netns/NAME`): how the kernel's drop reasons name it."""
        return self.readback.inode

    @property
    def watcher(self) -> Capture:
        """The capture a probe reads this namespace's packets from."""
        return self.probing.watcher

    # -- reads (readback.py) ---------------------------------------------------------
    def links(self) -> list[LinkState]:
        return self.readback.links()

    def link(self, name: str) -> LinkState:
        return self.readback.link(name)

    def link_names(self) -> list[str]:
        return self.readback.link_names()

    def addresses(self, dev: str | None = None, *, version: int | None = None) -> list[AddressState]:
        return self.readback.addresses(dev, version=version)

    def sysctl(self, key: str) -> str:
        return self.readback.sysctl(key)

    def routes(self) -> list[RouteState]:
        return self.readback.routes()

    def route_get(self, dst: str, src: str | None = None) -> RouteLookup:
        return self.readback.route_get(dst, src)

    def neighbours(self) -> list[NeighbourState]:
        return self.readback.neighbours()

    def neighbour(self, dst: str) -> NeighbourState | None:
        return self.readback.neighbour(dst)

    def fdb(self, bridge: str | None = None) -> list[FdbEntry]:
        return self.readback.fdb(bridge)

    def netnsid(self, other: Netns | str) -> int | None:
        return self.readback.netnsid(other)

    def ethtool_stats(self, dev: str) -> dict[str, int]:
        return self.readback.ethtool_stats(dev)

    def listening(self, port: int) -> bool:
        return self.readback.listening(port)

    # -- processes (processes.py) ----------------------------------------------------
    def spawn(self, argv: Iterable[str], env: dict[str, str] | None = None) -> Process:
        return self.processes.spawn(argv, env)

    def serve(self, argv: Iterable[str], port: int, *, timeout: float = 60.0) -> Process:
        __tracebackhide__ = True
        return self.processes.serve(argv, port, timeout=timeout)

    def run(
        self, argv: Iterable[str], *, input: bytes | None = None, env: dict[str, str] | None = None, timeout: float = 30.0, check: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        __tracebackhide__ = True
        return self.processes.run(argv, input=input, env=env, timeout=timeout, check=check)

    # -- probes (probing.py) ---------------------------------------------------------
    def ping(self, dst: str, *, timeout: float | None = None, size: int = 0) -> Result:
        return self.probing.ping(dst, timeout=timeout, size=size)

    def arp(self, target: str, dev: str, *, timeout: float | None = None) -> Result:
        return self.probing.arp(target, dev, timeout=timeout)

    def ndp(self, target: str, dev: str, *, timeout: float | None = None) -> Result:
        return self.probing.ndp(target, dev, timeout=timeout)

    def listen(self, port: int, addr: str = "0.0.0.0") -> socket.socket:
        return self.probing.listen(port, addr)

    def chat(
        self,
        server: Netns | str,
        dst: str,
        port: int,
        *,
        timeout: float | None = None,
        to_server: bytes | None = None,
        to_client: bytes | None = None,
        server_port: int | None = None,
    ) -> Result:
        return self.probing.chat(server, dst, port, timeout=timeout, to_server=to_server, to_client=to_client, server_port=server_port)

    def connect(self, dst: str, port: int, *, timeout: float | None = None) -> Result:
        return self.probing.connect(dst, port, timeout=timeout)

    def http_get(self, host: str, port: int, path: str = "/", *, timeout: float = 2.0) -> Result:
        return self.probing.http_get(host, port, path, timeout=timeout)


def _documented_by_their_parts() -> None:
    """Each flat method says what its part's method says (`help(ns.ping)`)."""
    for part in (Readback, Processes, Probing):
        for name, method in vars(part).items():
            face = vars(Netns).get(name)
            if callable(face) and not name.startswith("_") and face.__doc__ is None:
                face.__doc__ = method.__doc__


_documented_by_their_parts()
