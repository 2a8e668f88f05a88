"""Bad CNI input: each mistake gives one line naming the file, key or variable
to fix, and leaves the lab exactly as it was (no link, address, route, IPAM
reservation or NAT rule half-built).

      host (cni0 once c1 is attached) --- c1, c2        outside --- host (uplink)

Checked by reading back netlink state, the private IPAM directory and the
host's NAT table before and after the failing call.
"""

from __future__ import annotations

import json
import os

import pytest

from nslab.tutorials.cni import CniError, Runtime, find_plugins, unavailable
from nslab.tutorials.podnet import PodNetwork, lab_state

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

NET = PodNetwork(("c1", "c2"))
ALL = (NET.host, *NET.containers)


@pytest.fixture
def cni(lab):
    with Runtime(lab, host=NET.host) as runtime:
        yield runtime


def footprint(lab, cni):
    """Everything a plugin could leave behind, as comparable data."""
    ipam = sorted(str(p.relative_to(cni.ipam_dir)) for p in cni.ipam_dir.rglob("*") if p.name != "lock")
    return lab_state(lab, ALL, NET.containers), cni.nat_rules(), ipam


def failing(lab, cni, call):
    """Run *call*, which must raise CniError, and check it changed nothing; returns the error."""
    before = footprint(lab, cni)
    with pytest.raises(CniError) as failed:
        call()
    assert "\n" not in str(failed.value)
    assert footprint(lab, cni) == before, f"{failed.value} left something behind"
    return failed.value


def test_malformed_json_names_the_file_and_position(lab, cni):
    lab.build(NET.nodes())
    path = cni.netd / "10-labnet.conflist"
    text = '{"cniVersion": "1.0.0", "name": "labnet",\n "plugins": [{"type": "bridge",}]}\n'
    path.write_text(text)
    err = failing(lab, cni, lambda: cni.add("labnet", "c1"))
    # The parser's own words and column: Python 3.13 says "Illegal trailing comma before end of
    # object" at column 31, 3.11 "Expecting property name enclosed in double quotes" at 32
    # (found by `nslab matrix trixie`).
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(text)
    where = parsed.value
    assert where.lineno == 2 and where.colno in (31, 32)
    assert str(err) == f"{path}: not valid JSON at line 2 column {where.colno}: {where.msg}; fix the file"


def test_a_key_of_the_wrong_type_is_the_plugins_own_error_and_is_undone(lab, cni):
    lab.build(NET.nodes())
    conf = NET.conflist()
    conf["plugins"][0]["mtu"] = "1500"  # a string where bridge wants a number
    path = cni.install(conf)
    err = failing(lab, cni, lambda: cni.add(NET.name, "c1"))
    assert err.field == f"{path}: plugins[0]"
    assert err.code == 999  # bridge 1.1.1 reports it as a generic error, not the spec's 6 (decoding)
    assert "cannot unmarshal string into Go struct field NetConf.mtu of type int" in err.message, err
    assert err.message.endswith("; fix the JSON types of the keys (DEL rejects the config the same way: the plugin stopped before changing anything)")


def test_unknown_plugin_type_names_the_key_and_lists_what_exists(lab, cni):
    lab.build(NET.nodes())
    conf = NET.conflist()
    conf["plugins"][0]["type"] = "bridgee"
    path = cni.install(conf)
    err = failing(lab, cni, lambda: cni.add(NET.name, "c1"))
    assert err.field == f"{path}: plugins[0].type"
    assert err.message.startswith(f"no executable plugin 'bridgee' in {find_plugins()} (CNI_PATH); available: ")
    assert "bridge" in err.message.split("available: ")[1].split(", ")


def test_exhausted_ipam_range_names_it_and_the_half_made_veth_is_undone(lab, cni):
    # a /30 holds one container: .1 is the gateway, .2 goes to c1, nothing is left for c2
    lab.build(NET.nodes())
    small = PodNetwork(("c1",), subnet="10.22.0.0/30")
    path = cni.install(small.conflist())
    cni.add(small.name, "c1")
    err = failing(lab, cni, lambda: cni.add(small.name, "c2"))
    assert err.field == f"{path}: plugins[0].ipam.ranges"
    assert "no IP addresses available in range set: 10.22.0.1-10.22.0.2" in err.message, err
    assert err.message.endswith("the range is exhausted: widen the subnet or DEL containers that are gone (undone with DEL)")
    assert cni.reservations(small.name) == ["10.22.0.2"]  # c1 keeps its address


def test_missing_ipam_binary_names_the_key_and_the_directory(lab, cni, tmp_path):
    lab.build(NET.nodes())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for plugin in find_plugins().iterdir():
        if plugin.name != "host-local":
            os.symlink(plugin, bin_dir / plugin.name)
    with Runtime(lab, host=NET.host, plugin_dir=bin_dir) as partial:
        path = partial.install(NET.conflist())
        err = failing(lab, partial, lambda: partial.add(NET.name, "c1"))
    assert err.field == f"{path}: plugins[0].ipam.type"
    assert err.message.startswith(f"no executable plugin 'host-local' in {bin_dir} (CNI_PATH)")


def test_namespace_path_that_does_not_exist_names_cni_netns(lab, cni):
    lab.build(NET.nodes())
    cni.install(NET.conflist())
    err = failing(lab, cni, lambda: cni.add(NET.name, "/run/netns/c9"))
    assert str(err) == "CNI_NETNS: '/run/netns/c9': No such file or directory; create the container's namespace first (lab.add_namespace) and pass lab.ns(NAME)"


def test_host_local_may_not_write_outside_the_lab(lab, cni):
    """A net.d file pointing host-local at the host's /var/lib/cni is refused before anything runs."""
    lab.build(NET.nodes())
    conf = NET.conflist()
    conf["plugins"][0]["ipam"]["dataDir"] = "/var/lib/cni/networks"
    path = cni.netd / "10-labnet.conflist"
    path.write_text(json.dumps(conf))
    err = failing(lab, cni, lambda: cni.add(NET.name, "c1"))
    assert err.field == f"{path}: plugins[0].ipam.dataDir"
    assert err.message.startswith("'/var/lib/cni/networks' is outside the lab's CNI directory")
    assert cni.calls == []  # no plugin ran
