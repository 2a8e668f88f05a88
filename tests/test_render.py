"""nslab.views.render and `nslab show`: the printed `ip` commands really build the lab.

For each catalog lab, the commands `nslab show NAME` prints are run by `sh`
in the test's sandbox (its private /run/netns), exactly as a learner would
paste them; the namespaces they made are then named in a Lab and the lab's
reachability checks are pinged, and what the kernel reports is compared
with the model the commands came from.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nslab import Namespace, Outcome, Topology, Veth
from nslab.cli import main as cli_main
from nslab.cli.main import main as nslab
from nslab.model import plan
from nslab.tutorials import catalog
from nslab.views import render

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")


def show(capsys, *argv: str) -> str:
    __tracebackhide__ = True
    assert nslab(["show", *argv]) == 0
    return capsys.readouterr().out


def build_from_commands(lab, script: str, names: list[str]) -> None:
    """Run *script* with sh in the sandbox, then adopt the namespaces it made.

    `ip netns add X` bind-mounts the namespace on /run/netns/X, where the lab
    wants to mount its own name: hold the namespace by an fd, `ip netns del`
    the script's name, and adopt it from the fd, so the lab owns (and removes)
    every namespace, whatever the test's outcome."""
    __tracebackhide__ = True
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


@needs_dot
def test_show_draws_svg_and_png(capsys, tmp_path):
    svg, png = tmp_path / "lab.svg", tmp_path / "lab.png"
    show(capsys, "bridge-three-containers", "--svg", str(svg), "--png", str(png))
    text = svg.read_text()
    for ns in ("host", "container1", "container2", "container3"):
        assert f"<title>cluster_{ns}</title>" in text
    assert "172.17.0.1/24" in text and "<title>host/br0&#45;&#45;host/veth1</title>" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_dot
def test_a_lab_drawn_again_is_drawn_once_and_every_drawing_by_one_kept_dot(monkeypatch):
    drawn, runs = [], []
    real_svg, real_run = render.kept_dot.svg, subprocess.run
    monkeypatch.setattr(render.kept_dot, "svg", lambda dot, source, timeout: drawn.append(source) or real_svg(dot, source, timeout))
    monkeypatch.setattr(render.subprocess, "run", lambda argv, **kw: runs.append(argv) or real_run(argv, **kw))
    topo = catalog.LABS["bridge-three-containers"].topology
    source = render.to_dot(topo, title=f"drawn twice by {os.getpid()}")  # a source no earlier test of this process drew
    first, again = render.inline_svg(topo, source=source), render.inline_svg(topo, source=source)
    assert first == again and "<title>cluster_host</title>" in first
    kept = render.kept_dot._kept
    other = render.inline_svg(topo, source=render.to_dot(topo, title=f"drawn once more by {os.getpid()}"))
    assert "drawn once more" in other and render.kept_dot._kept is kept and kept.poll() is None
    assert len(drawn) == 2 and runs == []  # no dot started for either
    alone = real_run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True).stdout.decode()

    def drawing(svg: str) -> list[str]:  # its lines, without the ids a dot numbers across its run, in any order (nslab/views/dot.py)
        return sorted(re.sub(r' id="[^"]*"', "", svg[svg.index("<svg") :]).splitlines())

    assert drawing(alone) == drawing(first)  # what a dot of its own draws


@needs_dot
def test_a_source_dot_refuses_is_reported_and_the_next_is_drawn():
    with pytest.raises(render.DiagramUnavailable, match=r"^dot -Tsvg failed: Error: <stdin>: syntax error in line 1"):
        render.run_dot(f"graph {{ a{os.getpid()} -- ; }}")
    assert "<title>a&#45;&#45;b</title>" in render.run_dot(f"graph g{os.getpid()} {{ a -- b; }}").decode()


@needs_dot
def test_a_forked_child_draws_with_a_dot_of_its_own_and_the_kept_one_ends_with_its_process():
    """A forked child (it leaves with os._exit) keeps no dot, which init would have to reap; the
    process that keeps one reaps it at exit: no dot is left, not even as a zombie."""
    from nslab.kernel import child

    render.run_dot(f"graph parent{os.getpid()} {{ p -- q; }}")  # the parent's kept dot exists
    kept = render.kept_dot._kept

    def draw_in_child() -> tuple[bool, str]:
        return render.kept_dot._forked, render.run_dot(f"graph child{os.getpid()} {{ c -- d; }}").decode()

    forked, svg = child.run(draw_in_child, timeout=30)
    assert forked and "<title>c&#45;&#45;d</title>" in svg
    assert "<title>p&#45;&#45;r</title>" in render.run_dot(f"graph again{os.getpid()} {{ p -- r; }}").decode()
    assert render.kept_dot._kept is kept and kept.poll() is None
    script = "from nslab.views import render; render.run_dot('graph { a -- b; }'); print(render.kept_dot._kept.pid)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert not Path(f"/proc/{int(done.stdout)}").exists(), "the dot of a process that ended is still in the process table"


def kernel_state(lab) -> dict:
    """What the kernel holds, namespace by namespace, in a form two builds can be compared by."""
    out = {}
    for ns in lab.namespaces:
        links = {link.name: (link.kind, link.up, link.master) for link in ns.links()}
        addresses = sorted((a.dev, a.cidr, a.scope) for a in ns.addresses() if not ipaddress.ip_interface(a.cidr).is_link_local)
        routes = sorted(str(r) for r in ns.routes())
        sysctls = {key: ns.sysctl(key) for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.disable_ipv6")}
        out[ns.name] = {"links": links, "addresses": addresses, "routes": routes, "sysctls": sysctls}
    return out


@pytest.mark.parametrize("name", list(catalog.LABS))
def test_lab_build_and_the_printed_commands_leave_the_same_kernel_state(lab, capsys, name):
    """Both read the one build plan; the kernel is the judge that they apply it alike
    (e.g. a route without a gateway is scope link either way, as ip(8) adds it)."""
    spec = catalog.LABS[name]
    built = kernel_state(lab.build(spec.topology))
    for ns in lab.namespaces:
        lab.delete_namespace(ns.name)
    build_from_commands(lab, show(capsys, name), [ns.name for ns in spec.topology.namespaces])
    assert kernel_state(lab) == built


def test_the_printed_commands_are_the_build_plan_step_by_step():
    topo = catalog.LABS["bridge-three-containers"].topology
    assert [cmd for _, cmds in render.ip_commands(topo) for cmd in cmds] == [render.ip_command(step) for step in plan.steps(topo)]
    titles = [title for title, _ in render.ip_commands(topo)]
    assert titles == ["namespaces (each starts with lo down)", "bridges", "veth pairs (one end in each namespace)", "bridge ports", "addresses", "links up", "routes"]


def test_sysctls_come_before_the_links_and_per_interface_ones_after():
    sysctls = {"net.ipv6.conf.default.disable_ipv6": 1, "net.ipv4.conf.eth0.rp_filter": 2}
    topo = Topology([Namespace("c1", sysctls=sysctls), "host"], veths=[Veth("host", "veth1", "c1", "eth0")])
    order = [type(step).__name__ + ":" + getattr(step, "key", "") for step in plan.steps(topo)]
    assert order.index("SetSysctl:net.ipv6.conf.default.disable_ipv6") < order.index("AddVeth:")  # applies to eth0 when it is made
    assert order.index("AddVeth:") < order.index("SetSysctl:net.ipv4.conf.eth0.rp_filter") < order.index("LinkUp:")  # eth0 exists by then


def scenario_module(name: str):
    spec = importlib.util.spec_from_file_location(f"scenario_{name}", SCENARIOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def populated(topo: Topology) -> dict:
    """The topology as sets; a namespace that holds nothing (the tutorial's root
    namespace once both veth ends have moved out) is not part of the lab."""
    busy = {v_ns for v in topo.veths for v_ns in (v.ns, v.peer_ns)} | {b.ns for b in topo.bridges}
    busy |= {ns.name for ns in topo.namespaces if ns.lo_up or ns.sysctls}
    ends = {frozenset(((v.ns, v.name, v.up, v.master), (v.peer_ns, v.peer, v.peer_up, v.peer_master))) for v in topo.veths}
    return {
        "namespaces": {ns for ns in topo.namespaces if ns.name in busy},
        "veths": ends,
        "bridges": set(topo.bridges),
        "addresses": set(topo.addresses),
        "routes": set(topo.routes),
    }


@pytest.mark.parametrize("name", [name for name, spec in catalog.LABS.items() if spec.scenario])
def test_each_catalog_lab_is_its_scenarios_final_state(lab, name):
    spec = catalog.LABS[name]
    assert spec.final, f"{name}: the catalog names the scenario {spec.scenario} but not its final step"
    getattr(scenario_module(spec.scenario), spec.final)(lab)
    assert populated(lab.topology) == populated(spec.topology)
    for check in spec.checks:  # and the live lab the scenario built passes the catalog's checks
        assert lab.ns(check.src).ping(check.dst).replied, check


def loaded_after(code: str) -> list[str]:
    """The nslab modules a fresh interpreter has loaded after running *code*."""
    probe = f"import sys\n{code}\nprint('LOADED', *sorted(m for m in sys.modules if m == 'nslab' or m.startswith('nslab.')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split("LOADED", 1)[1].split()


def test_import_nslab_and_nslab_help_load_only_what_they_use():
    assert loaded_after("import nslab") == ["nslab"]
    assert loaded_after("import nslab; nslab.Topology") == ["nslab", "nslab.model", "nslab.model.checks", "nslab.model.topology"]
    help_ = "from nslab.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(help_) == ["nslab", "nslab.cli", "nslab.cli.main"]


@pytest.fixture
def commands(monkeypatch, tmp_path):
    """nslab's command table with two more: one whose module needs a dependency that
    is not installed, one whose module this version does not have."""
    (tmp_path / "nslab_test_command.py").write_text("import nslab_test_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli_main.COMMANDS, "needy", ("nslab_test_command", "needs a dependency"))
    monkeypatch.setitem(cli_main.COMMANDS, "gone", ("nslab.cli.nslab_test_no_such_command", "not in this version"))


def test_a_missing_dependency_is_named_not_hidden(commands, capsys):
    with pytest.raises(SystemExit) as exc:
        nslab(["needy"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 2  # usage line, then one line
    assert "'needy' needs the Python module 'nslab_test_missing_dependency', which is not installed here" in err


def test_a_command_this_version_lacks_says_so(commands, capsys):
    with pytest.raises(SystemExit):
        nslab(["gone"])
    assert "'gone' is not available in this version of nslab" in capsys.readouterr().err
