"""A namespace's nftables tables, counted by one nf_tables dump (nslab.kernel.nftables.table_count),
against what `nft -j list ruleset` lists; where there are none, the ruleset is read without nft."""

from __future__ import annotations

import json
import shutil

import pytest

from nslab.kernel import dump, nftables, process
from nslab.lab.live import Lab

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed (apt-get install nftables)")

# each step adds to the ruleset of the one before: a table of another family, a chain with a rule,
# iptables-nft's table (written with nft, as iptables-nft writes it)
STEPS = [
    "add table inet t",
    "add table bridge b",
    "add chain inet t input { type filter hook input priority 0; policy accept; }\nadd rule inet t input tcp dport 22 drop",
    "add table ip nat",
]


def _nft_tables(fd: int) -> int:
    done = process.run(fd, ["nft", "-j", "list", "ruleset"], timeout=10)
    assert done.returncode == 0, done.stderr
    return sum("table" in item for item in json.loads(done.stdout)["nftables"])


def test_the_tables_counted_are_those_nft_lists(nslab_sandbox):
    with Lab() as lab:
        fd = lab.add_namespace("a").handle.fd
        assert nftables.table_count(fd) == 0 == _nft_tables(fd)
        for step in STEPS:
            lab.ns("a").run(["nft", "-f", "-"], input=step.encode(), check=True)
            assert nftables.table_count(fd) == _nft_tables(fd) > 0, step
        assert nftables.table_count(fd) == 3  # inet t, bridge b, ip nat


def test_a_namespace_without_tables_is_read_without_nft_and_one_with_tables_through_it(nslab_sandbox, monkeypatch):
    started = []
    real = process.run

    def counted(fd: int, argv: list[str], **kwargs):
        started.append(argv[0])
        return real(fd, argv, **kwargs)

    monkeypatch.setattr(process, "run", counted)
    with Lab() as lab:
        fd = lab.add_namespace("a").handle.fd
        assert nftables.read(fd) == nftables.Ruleset((), (), {}) and dump.read_ruleset(fd) == ""
        assert started == []
        lab.ns("a").run(["nft", "-f", "-"], input=STEPS[2].replace("add chain", "add table inet t\nadd chain", 1).encode(), check=True)
        started.clear()
        ruleset = nftables.read(fd)
        assert ruleset is not None and [c["name"] for c in ruleset.chains] == ["input"]
        assert [s.text for s in ruleset.stoppers(("inet",), ("input",))] == ["tcp dport 22 drop"]
        assert "tcp dport 22 drop" in dump.read_ruleset(fd)
        assert started.count("nft") == 3  # -j, then -a for the rules' texts; then the dump's
