"""Tutorial 004's `docker run --net=container:$contid` and 003's "the magic of
--net container: shared localhost": two processes, one network namespace.

      app (a lab namespace, lo up)
        PID A: python3 -m http.server 8080 --bind 127.0.0.1
        PID B: nsenter --net=/proc/A/ns/net python3 client.py   (joins A's namespace by PID)
      other (its own namespace, lo up): another 127.0.0.1

A process that joins another's network namespace shares everything in it:
the same lo, the same 127.0.0.1, the same ports. A namespace of its own has
a loopback of its own, where nothing listens.
"""

from __future__ import annotations

import errno
import os
import sys

from nslab import Cause, Outcome

PORT = 8080
CLIENT = """
import os, socket
s = socket.create_connection(("127.0.0.1", 8080), timeout=5)
s.sendall(b"GET / HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
print(s.recv(200).split(b"\\r\\n")[0].decode())
print(s.getsockname()[0])
print(os.readlink("/proc/self/ns/net"))
"""
BIND = """
import socket
socket.socket().bind(("127.0.0.1", 8080))
"""


def start_app(lab):
    """$ docker run -d app   (a web server on the container's localhost only)"""
    app = lab.add_namespace("app", lo_up=True)
    return app, app.serve([sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1", "--directory", os.path.dirname(__file__)], PORT)


def join(lab, pid: int, code: str, *, check: bool = False):
    """$ docker run --net=container:$contid ...  ==  nsenter --net=/proc/$pid/ns/net ..."""
    launcher = lab.add_namespace("launcher")  # where the second process is started from: it leaves it at once
    return launcher.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code], timeout=10, check=check)


def test_01_the_app_answers_on_its_own_localhost(lab):
    app, _ = start_app(lab)
    result = app.http_get("127.0.0.1", PORT)
    assert result.replied and result.status == 200, result


def test_02_a_process_joining_by_pid_talks_to_it_over_127_0_0_1(lab):
    _, server = start_app(lab)
    done = join(lab, server.pid, CLIENT, check=True)
    status, local, netns = done.stdout.decode().split("\n")[:3]
    assert status == "HTTP/1.0 200 OK"
    assert local == "127.0.0.1"
    assert netns == os.readlink(f"/proc/{server.pid}/ns/net")  # one namespace, two processes
    server.stop()
    assert '127.0.0.1 - - ' in server.output() and '"GET / HTTP/1.0" 200' in server.output()  # the server's access log


def test_03_the_shared_ports_are_taken(lab):
    # shared localhost, "and more": the joined process cannot bind the app's port
    _, server = start_app(lab)
    done = join(lab, server.pid, BIND)
    assert done.returncode != 0 and b"Address already in use" in done.stderr, done
    assert f"[Errno {errno.EADDRINUSE}]".encode() in done.stderr


def test_04_another_namespace_has_another_localhost(lab):
    start_app(lab)
    other = lab.add_namespace("other", lo_up=True)
    result = other.http_get("127.0.0.1", PORT)
    assert result.outcome is Outcome.REFUSED, result  # a loopback of its own, where nothing listens
    assert result.cause is Cause.PORT_CLOSED
    other.run([sys.executable, "-c", BIND], check=True)  # and the port is free there
