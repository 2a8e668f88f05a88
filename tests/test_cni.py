"""nslab.tutorials.cni without a lab: reading net.d files, turning CNI errors into one line,
comparing lab states, and the plugin version note."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nslab.model.topology import LabError
from nslab.tutorials.cni import (
    CniError,
    NetworkConfig,
    _plugin_error,
    find_plugins,
    lab_note,
    read_config,
    unavailable,
    versions,
)
from nslab.tutorials.podnet import PodNetwork, differences


def write(tmp_path: Path, text: str, name: str = "10-net.conflist") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_conflist_gives_each_plugin_name_version_and_prev_result(tmp_path):
    path = write(tmp_path, json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}))
    config = read_config(path)
    assert (config.name, config.cni_version, len(config.plugins)) == ("n", "1.0.0", 2)
    assert config.plugin_config(1, {"ips": []}) == {"type": "portmap", "name": "n", "cniVersion": "1.0.0", "prevResult": {"ips": []}}
    assert "prevResult" not in config.plugin_config(0, None)


def test_a_single_plugin_conf_reads_as_a_list_of_one(tmp_path):
    config = read_config(write(tmp_path, '{"cniVersion": "0.4.0", "name": "n", "type": "ptp"}', "10-n.conf"))
    assert [p["type"] for p in config.plugins] == ["ptp"]


@pytest.mark.parametrize(
    "text, field, words",
    [
        ('{"name": "n", "plugins": [{"type": "bridge"}]}', "cniVersion", 'write e.g. "cniVersion": "1.0.0"'),
        ('{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}', "name", "missing or not a string (got None)"),
        ('{"cniVersion": "1.0.0", "name": "n", "plugins": []}', "plugins", "must be a non-empty list"),
        ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {"mtu": 1}]}', "plugins[1].type", 'needs a "type"'),
        ("[1, 2]", None, "expected a JSON object, got list"),
        ('{"cniVersion": "1.0.0"', None, "not valid JSON at line 1 column 23"),
    ],
)
def test_bad_net_d_files_name_the_file_and_key(tmp_path, text, field, words):
    path = write(tmp_path, text)
    with pytest.raises(CniError) as failed:
        read_config(path)
    assert failed.value.field == (f"{path}: {field}" if field else str(path))
    assert words in str(failed.value)
    assert "\n" not in str(failed.value)


def done(stdout: str, rc: int = 1) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["bridge"], rc, stdout.encode(), b"")


CONFIG = NetworkConfig("n", "1.0.0", ({"type": "bridge", "ipam": {"type": "host-local"}},), Path("/x/net.d/10-n.conflist"))


@pytest.mark.parametrize(
    "msg, field",
    [
        ("failed to allocate for range 0: no IP addresses available in range set: 10.0.0.1-10.0.0.2", "/x/net.d/10-n.conflist: plugins[0].ipam.ranges"),
        ('failed to open netns "/run/netns/x": no such file or directory', "CNI_NETNS"),
        ('failed to find plugin "static" in path [/usr/lib/cni]', "/x/net.d/10-n.conflist: plugins[0].ipam.type"),
        ("something nobody foresaw", "/x/net.d/10-n.conflist: plugins[0]"),
    ],
)
def test_cni_error_json_becomes_one_line_naming_the_field(msg, field):
    err = _plugin_error(CONFIG, 0, "ADD", "c1", done(json.dumps({"code": 11, "msg": msg, "details": "more\nlines"})))
    assert err.field == field
    assert err.code == 11
    assert err.message.startswith(f"bridge ADD for 'c1' failed with CNI error 11: {msg} (more lines)")


def test_a_plugin_that_prints_no_json_is_still_reported():
    err = _plugin_error(CONFIG, 0, "DEL", "c1", done("panic: runtime error"))
    assert err.code is None and "panic: runtime error" in err.message


def test_differences_say_which_side_has_what():
    a = {"host": {"routes": {"10.0.0.0/24 dev br0"}, "links": {"br0 bridge UP mtu 1500"}}}
    b = {"host": {"routes": {"10.0.0.0/24 dev br0 linkdown"}, "links": {"br0 bridge UP mtu 1500"}}, "c1": {"links": {"lo loopback DOWN mtu 65536"}}}
    assert differences(a, b, ("builder", "cni")) == [
        "c1 links: only in cni: lo loopback DOWN mtu 65536",
        "host routes: only in builder: 10.0.0.0/24 dev br0",
        "host routes: only in cni: 10.0.0.0/24 dev br0 linkdown",
    ]
    assert differences(a, a) == []


def test_pod_network_hands_out_addresses_in_host_local_order():
    net = PodNetwork(("a", "b"), subnet="10.1.0.0/24")
    assert (net.gateway, net.address("a"), net.address("b")) == ("10.1.0.1", "10.1.0.2/24", "10.1.0.3/24")
    with pytest.raises(LabError, match="PodNetwork.containers: 2 containers do not fit in 10.1.0.0/30"):
        PodNetwork(("a", "b"), subnet="10.1.0.0/30")
    with pytest.raises(LabError, match="PodNetwork.plugin"):
        PodNetwork(plugin="ptp").topology()


def test_missing_plugins_say_how_to_install_them(monkeypatch, tmp_path):
    monkeypatch.setattr("nslab.tutorials.cni_plugins.KNOWN_DIRS", ())
    monkeypatch.setattr("nslab.tutorials.cni_plugins._dpkg_files", list)
    monkeypatch.setenv("NSLAB_CNI_PATH", str(tmp_path))
    assert unavailable() == f"no CNI reference plugins found (looked in {tmp_path}); install them with `apt-get install -y containernetworking-plugins` or set NSLAB_CNI_PATH"


@pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
def test_the_version_note_names_binary_package_and_cni_versions():
    info = versions(("bridge",))
    bridge = info["plugins"]["bridge"]
    assert bridge["path"] == str(find_plugins() / "bridge")
    assert "1.0.0" in bridge["cni_versions"]
    note = lab_note(("bridge", "host-local"))
    assert note.startswith(f"CNI plugins from {find_plugins()} [")
    assert "bridge (" in note and "host-local (" in note and "\n" not in note
