"""nslab.views.render and `nslab show`: the printed `ip` commands really build the lab.

For each catalog lab, the commands `nslab show NAME` prints are run by `sh`
in the test's sandbox (its private /run/netns), exactly as a learner would
paste them; the namespaces they made are then named in a Lab and the lab's
reachability checks are pinged, and what the kernel reports is compared
with the model the commands came from.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from nslab import Outcome, Topology
from nslab.cli.main import main as nslab
from nslab.tutorials import catalog
from nslab.views import render


def show(capsys, *argv: str) -> str:
    assert nslab(["show", *argv]) == 0
    return capsys.readouterr().out


def build_from_commands(lab, script: str, names: list[str]) -> None:
    """Run *script* with sh in the sandbox, then adopt the namespaces it made.

    `ip netns add X` bind-mounts the namespace on /run/netns/X, where the lab
    wants to mount its own name: hold the namespace by an fd, `ip netns del`
    the script's name, and adopt it from the fd, so the lab owns (and removes)
    every namespace, whatever the test's outcome."""
    netns_dir = lab.kernel.sandbox.netns_dir
    before = set(os.listdir(netns_dir))
    try:
        proc = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True, timeout=60, check=False)
        made = sorted(set(os.listdir(netns_dir)) - before)
        assert proc.returncode == 0, f"the printed commands failed: {proc.stderr.strip()}"
        assert made == sorted(names)
        for name in made:
            fd = os.open(os.path.join(netns_dir, name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                subprocess.run(["ip", "netns", "del", name], check=True, timeout=10)
                lab.adopt_namespace(name, f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
    finally:
        for name in set(os.listdir(netns_dir)) - before - {ns.name for ns in lab.namespaces}:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.mark.parametrize("name", list(catalog.LABS))
def test_printed_ip_commands_build_a_lab_that_passes_its_checks(lab, capsys, name):
    spec = catalog.LABS[name]
    script = show(capsys, name)
    assert script.startswith(f"# {name}: ")
    build_from_commands(lab, script, [ns.name for ns in spec.topology.namespaces])

    for check in spec.checks:
        result = lab.ns(check.src).ping(check.dst)
        assert result.outcome is Outcome.REPLY, f"{check}: {result}"

    # What the kernel reports is what the model says, link by link, address by address, route by route.
    topo = spec.topology
    for ns in topo.namespaces:
        live = lab.ns(ns.name)
        assert live.link("lo").up is ns.lo_up
        assert {key: live.sysctl(key) for key, _ in ns.sysctls} == dict(ns.sysctls)
        assert sorted(live.link_names()) == sorted(topo.links_in(ns.name))
        masters = {name: master for v in topo.veths for end_ns, name, master in v.ends() if end_ns == ns.name}
        assert {link.name: link.master for link in live.links() if link.kind == "veth"} == masters
        got = {(a.dev, a.cidr) for a in live.addresses() if a.dev != "lo" and not ipaddress.ip_interface(a.cidr).is_link_local}
        assert got == {(a.dev, a.cidr) for a in topo.addresses if a.ns == ns.name}
        added = sorted((r.dst, r.via, r.dev) for r in live.routes() if r.proto == "boot")
        wanted = sorted((r.dst, r.via, r.dev or live.route_get(r.via).dev) for r in topo.routes if r.ns == ns.name)
        assert added == wanted


def test_show_lists_the_catalog_and_prints_json_that_round_trips(capsys):
    listing = show(capsys)
    assert [line.split()[0] for line in listing.splitlines()] == list(catalog.LABS)
    data = json.loads(show(capsys, "bridge-three-containers", "--json"))
    assert Topology.from_dict(data) == catalog.LABS["bridge-three-containers"].topology


def test_show_accepts_a_scenario_module_path(capsys):
    script = show(capsys, "scenarios/test_veth_two_namespaces.py")
    assert "ip -n ns1 link add v1 type veth peer name v2 netns ns2" in script.splitlines()


def test_show_rejects_an_unknown_lab_in_one_line(capsys):
    assert nslab(["show", "no-such-lab"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no lab or scenario named 'no-such-lab'" in err and "bridge-three-containers" in err


def test_names_are_shell_quoted():
    assert "ip netns add 'a$b'" in render.ip_script(Topology(["a$b"])).splitlines()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_show_draws_svg_and_png(capsys, tmp_path):
    svg, png = tmp_path / "lab.svg", tmp_path / "lab.png"
    show(capsys, "bridge-three-containers", "--svg", str(svg), "--png", str(png))
    text = svg.read_text()
    for ns in ("host", "container1", "container2", "container3"):
        assert f"<title>cluster_{ns}</title>" in text
    assert "172.17.0.1/24" in text and "<title>host/br0&#45;&#45;host/veth1</title>" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
