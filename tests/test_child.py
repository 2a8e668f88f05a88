"""nslab.kernel.child: a function run in a forked child, in a namespace, with a deadline."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nslab.kernel import child
from nslab.kernel.process import wait_until


def netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def gone(pid: int) -> bool:
    """Dead: reaped, or a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_value_comes_back_typed():
    assert child.run(divmod, 17, 5, timeout=10) == (3, 2)
    assert child.run(os.getpid, timeout=10) != os.getpid()


class Refused(Exception):
    pass


def refuse(what: str) -> None:
    raise Refused(f"no {what}")


def test_the_childs_exception_is_raised_in_the_parent_with_its_traceback():
    with pytest.raises(Refused, match="no bridge") as caught:
        child.run(refuse, "bridge", timeout=10)
    assert any("in nslab's child process" in note and "refuse" in note for note in caught.value.__notes__)


class Picky(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(f"{code}: {text}")


def raise_picky() -> None:
    raise Picky(7, "odd")


def test_an_exception_that_does_not_unpickle_comes_back_in_words():
    with pytest.raises(child.ChildError, match="Picky: 7: odd"):
        child.run(raise_picky, timeout=10)


def test_a_child_that_dies_without_an_answer_says_how_it_ended():
    with pytest.raises(child.ChildError, match="without an answer \\(exit status 3\\)"):
        child.run(os._exit, 3, timeout=10)


def block_with_a_grandchild(report: int) -> None:
    """Start a process in this child's group, say its PID, then wait forever (on a pipe no one writes)."""
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    os.write(report, f"{proc.pid}\n".encode())
    r, _ = os.pipe()
    os.read(r, 1)


def test_at_the_deadline_the_child_and_its_process_group_are_killed():
    r, w = os.pipe()
    started = time.monotonic()
    with pytest.raises(child.ChildTimeout, match="did not answer within 0.5 s"):
        child.run(block_with_a_grandchild, w, timeout=0.5)
    assert time.monotonic() - started < 5
    os.close(w)
    grandchild = int(os.read(r, 64))
    os.close(r)
    wait_until(lambda: gone(grandchild), 5.0, f"the child's own process {grandchild} killed with it")


ORPHAN = """
import os, sys
from nslab.kernel import linux
from nslab.kernel.process import wait_until
parent = os.getpid()
if os.fork() == 0:
    with open(sys.argv[1], "w") as f:
        f.write(str(os.getpid()))
    wait_until(lambda: os.getppid() != parent, 10.0, "the parent gone")
    linux.die_with_parent(parent)
    with open(sys.argv[2], "w") as f:
        f.write("alive")
os._exit(0)
"""


def test_a_child_whose_parent_died_before_it_asked_to_die_with_it_ends_itself(tmp_path):
    """PR_SET_PDEATHSIG covers only a parent that dies after the request: one that died between
    the fork and the prctl left its child running, reparented. Here the child asks only once its
    parent is gone, and ends itself on finding another parent than the one it was forked by."""
    pid_file, alive = tmp_path / "pid", tmp_path / "alive"
    done = subprocess.run([sys.executable, "-c", ORPHAN, str(pid_file), str(alive)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    orphan = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), 10.0, "the child's PID"))
    wait_until(lambda: gone(orphan), 10.0, f"the orphan {orphan} ended")
    assert not alive.exists()


def test_a_fresh_namespace_then_the_same_one_by_path_and_by_fd():
    r, w = os.pipe()
    holder = child.start(os.read, r, 1, netns=child.FRESH)  # holds its fresh namespace until we write
    try:
        path = f"/proc/{holder.pid}/ns/net"
        wait_until(lambda: os.stat(path).st_ino != netns_inode(), 5.0, "the holder in a namespace of its own")
        fresh = os.stat(path).st_ino
        assert child.run(netns_inode, netns=path, timeout=10) == fresh
        fd = os.open(path, os.O_RDONLY)
        try:
            assert child.run(netns_inode, netns=fd, timeout=10) == fresh
        finally:
            os.close(fd)
    finally:
        os.write(w, b"x")
        assert holder.wait(10) == b"x"
        os.close(r)
        os.close(w)
    assert netns_inode() != fresh


def test_only_this_module_forks():
    """One way to run work in a child: `os.fork` is called in nslab/kernel/child.py only."""
    root = Path(__file__).resolve().parent.parent
    here = root / "nslab" / "kernel" / "child.py"
    forks = [
        f"{path.relative_to(root)}:{node.lineno}"
        for top in ("nslab", "fixtures", "scenarios", "exercises", "bench", "corpus", "tests")
        for path in sorted((root / top).rglob("*.py"))
        if path != here
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and node.attr in ("fork", "forkpty") and ast.unparse(node.value) == "os"
    ]
    assert not forks, "os.fork outside nslab/kernel/child.py (use child.run, child.start or child.spawn): " + ", ".join(forks)
