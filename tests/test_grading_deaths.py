"""A grading run holds the namespaces its graders hand over and lets them go a batch at a time
(nslab/grading/deaths.py), as this process's descriptor table shows: each held namespace is a
`net:[INODE]` entry of /proc/self/fd, and the kernel frees a namespace once no entry is left."""

from __future__ import annotations

import os

from nslab.grading.deaths import BatchedDeaths
from nslab.kernel import child


def held_namespaces() -> set[int]:
    """The inodes of the network namespaces this process holds a descriptor of."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory's own descriptor, closed by now
        if target.startswith("net:["):
            inodes.add(int(target[len("net:[") : -1]))
    return inodes


def grader(deaths: BatchedDeaths) -> int:
    """A grader's part, in a forked child in a namespace of its own: hand it over; its inode."""
    deaths.forget_inherited()
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    deaths.hand_over([fd])
    return os.fstat(fd).st_ino


def graded(deaths: BatchedDeaths) -> int:
    inode = child.run(grader, deaths, netns=child.FRESH, timeout=10.0)
    deaths.collect()
    return inode


def test_namespaces_outlive_their_graders_until_a_batch_is_full():
    deaths = BatchedDeaths(batch=3)
    try:
        first = {graded(deaths), graded(deaths)}
        assert len(first) == 2
        assert first <= held_namespaces(), "the run holds what two ended graders handed over"
        third = graded(deaths)
        assert not (first | {third}) & held_namespaces(), "the third hand-over fills the batch: all three are let go"
    finally:
        deaths.close()


def test_close_lets_go_of_a_batch_not_yet_full():
    deaths = BatchedDeaths(batch=3)
    inode = graded(deaths)
    assert inode in held_namespaces()
    deaths.close()
    assert inode not in held_namespaces()


def test_a_grader_forked_later_keeps_no_copy_of_what_the_run_holds():
    deaths = BatchedDeaths(batch=3)
    try:
        inode = graded(deaths)
        assert inode in held_namespaces()
        inherited = child.run(held_namespaces, timeout=10.0)
        assert inode in inherited, "a fork copies the run's descriptors"
        kept = child.run(lambda: (deaths.forget_inherited(), held_namespaces())[1], timeout=10.0)
        assert inode not in kept, "a grader that forgets them would not keep the namespace alive after the run lets go"
    finally:
        deaths.close()
