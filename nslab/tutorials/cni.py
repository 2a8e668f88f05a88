"""Runs the reference CNI plugins against lab namespaces, as a container runtime does.

    with Runtime(lab) as cni:                       # plugins run in lab.ns("host")
        cni.install(PodNetwork(("c1", "c2")).conflist())
        result = cni.add("labnet", lab.ns("c1"))    # CNI_COMMAND=ADD, config on stdin
        cni.check("labnet", lab.ns("c1")); cni.delete("labnet", lab.ns("c1"))

Each call executes the plugin binary with CNI_COMMAND, CNI_CONTAINERID,
CNI_NETNS, CNI_IFNAME and CNI_PATH set and the network's config (with
`name`, `cniVersion` and, after ADD, `prevResult`) on stdin, reading the
result JSON from stdout, as libcni does for a `.conflist`. The plugin is our
child, so it shares the sandbox's mount namespace; its network namespace is
the lab namespace playing the node ("host"), and CNI_NETNS is the container
namespace's path under the sandbox's private /run/netns. Its `net.d` and
host-local's `dataDir` live in a lab-private directory, so nothing touches
the host's /etc/cni, /var/lib/cni or /opt/cni.

A failed ADD is undone with DEL (as runtimes do), so bad input leaves
nothing half-built; plugin errors (CNI error JSON `{code, msg, details}`)
become one-line CniErrors naming the field or file to fix.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from nslab.kernel import leftovers
from nslab.kernel.linux import CLONE_NEWNET
from nslab.lab.live import Lab, Netns
from nslab.model.topology import LabError
from nslab.tutorials.cni_plugins import CniUnavailable, find_plugins, lab_note, unavailable, versions
from nslab.tutorials.podnet import PodNetwork

# what nslab.tutorials.cni has always offered; where the plugins are lives in cni_plugins.py
__all__ = ["Call", "CniError", "CniUnavailable", "NetworkConfig", "Runtime", "find_plugins", "lab_note", "read_config", "unavailable", "versions"]

CONFIG_SUFFIXES = (".conflist", ".conf", ".json")
NS_GET_NSTYPE = 0xB703  # ioctl on a namespace file: which kind of namespace it is
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CniError(LabError):
    """A plugin or its config said no. `field` names the config key, env variable or file."""

    def __init__(self, field: str, message: str, *, code: int | None = None):
        self.code = code
        self.message = " ".join(message.split())  # always one line
        super().__init__(field, self.message)


# -- network configuration, as found in net.d -----------------------------------------
@dataclass(frozen=True)
class NetworkConfig:
    """A `.conflist` (or single-plugin `.conf`) read from a net.d directory."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    file: Path

    def plugin_config(self, i: int, prev_result: dict | None) -> dict[str, Any]:
        """What plugin *i* gets on stdin: its own keys, plus name, cniVersion and prevResult."""
        conf = {**self.plugins[i], "name": self.name, "cniVersion": self.cni_version}
        if prev_result is not None:
            conf["prevResult"] = prev_result
        return conf


def read_config(path: Path) -> NetworkConfig:
    """Parse one net.d file; every error names the file and the key."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CniError(str(path), f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; fix the file") from None
    if not isinstance(data, dict):
        raise CniError(str(path), f"expected a JSON object, got {type(data).__name__}")
    single = "plugins" not in data  # a single-plugin .conf
    if single:
        data = {"cniVersion": data.get("cniVersion"), "name": data.get("name"), "plugins": [data]}
    for key in ("cniVersion", "name"):
        if not isinstance(data.get(key), str) or not data[key]:
            example = "1.0.0" if key == "cniVersion" else "labnet"
            raise CniError(f"{path}: {key}", f'missing or not a string (got {data.get(key)!r}); write e.g. "{key}": "{example}"')
    plugins = data["plugins"]
    if not isinstance(plugins, list) or not plugins:
        raise CniError(f"{path}: plugins", f"must be a non-empty list of plugin configs, got {plugins!r}")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("type"), str) or not plugin["type"]:
            where = f"{path}: type" if single else f"{path}: plugins[{i}].type"
            raise CniError(where, 'each plugin needs a "type" naming its binary, e.g. "bridge"')
    return NetworkConfig(data["name"], data["cniVersion"], tuple(plugins), path)


# -- the runtime -----------------------------------------------------------------------
@dataclass
class Call:
    """One plugin execution, for reports and the benchmark."""

    command: str
    plugin: str
    container: str
    seconds: float


class Runtime:
    """A container runtime's CNI side for one lab, with its own net.d and IPAM dir.

    *host* is the lab namespace the plugins run in (the node); *root* the
    private directory (default: a run-named scratch dir that `nslab clean`
    removes if the run is killed); *plugin_dir* where the binaries are
    (default: `find_plugins()`), passed to plugins as CNI_PATH.
    """

    def __init__(self, lab: Lab, *, host: str = "host", root: Path | None = None, plugin_dir: Path | None = None, timeout: float = 30.0):
        self.lab, self.host, self.timeout = lab, host, timeout
        self.plugin_dir = Path(plugin_dir) if plugin_dir else find_plugins()
        self._owned = root is None
        self.root = Path(leftovers.scratch_dir("cni") if root is None else root)
        self.netd.mkdir(parents=True, exist_ok=True)
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        self.calls: list[Call] = []
        self.used: dict[str, None] = {}  # plugin types run, in order (an ordered set)
        self._results: dict[tuple[str, str, str], dict] = {}  # libcni's result cache: (network, id, ifname) -> ADD result

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the private directory (if this runtime made it). Safe to call twice."""
        if self._owned and self.root.exists():
            shutil.rmtree(self.root)

    @property
    def netd(self) -> Path:
        return self.root / "net.d"

    @property
    def ipam_dir(self) -> Path:
        return self.root / "ipam"

    # -- configuration ------------------------------------------------------------
    def install(self, conflist: dict[str, Any], *, priority: int = 10) -> Path:
        """Write a network into the private net.d (host-local's dataDir pointed at the private IPAM dir)."""
        data = json.loads(json.dumps(conflist))
        for plugin in data.get("plugins", [data]):
            ipam = plugin.get("ipam") if isinstance(plugin, dict) else None
            if isinstance(ipam, dict) and ipam.get("type") == "host-local":
                ipam.setdefault("dataDir", str(self.ipam_dir))
        path = self.netd / f"{priority:02d}-{data.get('name', 'network')}.conflist"
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def network(self, name: str) -> NetworkConfig:
        """The first net.d file (in name order) defining *name*, as libcni picks it."""
        files = sorted(p for p in self.netd.iterdir() if p.suffix in CONFIG_SUFFIXES)
        for path in files:
            config = read_config(path)
            if config.name == name:
                self._check_config(config)
                return config
        found = [read_config(p).name for p in files]
        raise CniError("network", f"no network {name!r} in {self.netd}; it has {found}; install() it first")

    def _check_config(self, config: NetworkConfig) -> None:
        """What a runtime checks before running anything: the binaries exist, host-local stays private."""
        for i, plugin in enumerate(config.plugins):
            self._binary(plugin["type"], f"{config.file}: plugins[{i}].type")
            ipam = plugin.get("ipam")
            if isinstance(ipam, dict) and "type" in ipam:
                self._binary(ipam["type"], f"{config.file}: plugins[{i}].ipam.type")
                data_dir = ipam.get("dataDir")
                if ipam["type"] == "host-local" and (data_dir is None or not Path(data_dir).resolve().is_relative_to(self.root.resolve())):
                    raise CniError(
                        f"{config.file}: plugins[{i}].ipam.dataDir",
                        f"{data_dir!r} is outside the lab's CNI directory {self.root}; host-local would write to the host "
                        "(default /var/lib/cni/networks); install() the network to point it at the lab's IPAM dir",
                    )

    def _binary(self, plugin_type: str, where: str) -> Path:
        path = self.plugin_dir / plugin_type
        if "/" in plugin_type or not os.access(path, os.X_OK):
            have = sorted(p.name for p in self.plugin_dir.iterdir() if os.access(p, os.X_OK))
            raise CniError(where, f"no executable plugin {plugin_type!r} in {self.plugin_dir} (CNI_PATH); available: {', '.join(have) or 'none'}")
        return path

    # -- ADD / CHECK / DEL ----------------------------------------------------------
    def add(self, network: str, container: Netns | str, *, ifname: str = "eth0") -> dict[str, Any]:
        """CNI ADD through every plugin of the list; undone with DEL if any plugin fails."""
        config = self.network(network)
        netns, cid = self._container(container)
        result: dict | None = None
        for i in range(len(config.plugins)):
            try:
                result = self._exec("ADD", config, i, netns, cid, ifname, result)
            except CniError as exc:
                undo = self._rollback(config, i, netns, cid, ifname, exc)
                raise CniError(exc.field, exc.message + undo, code=exc.code) from None
        self._results[(network, cid, ifname)] = result or {}
        return result or {}

    def check(self, network: str, container: Netns | str, *, ifname: str = "eth0") -> None:
        """CNI CHECK: each plugin verifies what ADD made (raises CniError when it no longer holds)."""
        config = self.network(network)
        netns, cid = self._container(container)
        prev = self._results.get((network, cid, ifname))
        if prev is None:
            raise CniError("CNI_CONTAINERID", f"{cid!r} has no ADD result for {network!r}/{ifname}; CHECK needs a prior ADD")
        for i in range(len(config.plugins)):
            self._exec("CHECK", config, i, netns, cid, ifname, prev)

    def delete(self, network: str, container: Netns | str, *, ifname: str = "eth0") -> None:
        """CNI DEL, plugins in reverse order; repeating it is harmless, as the spec requires."""
        config = self.network(network)
        netns, cid = self._container(container)
        prev = self._results.get((network, cid, ifname))
        for i in reversed(range(len(config.plugins))):
            self._exec("DEL", config, i, netns, cid, ifname, prev)
        self._results.pop((network, cid, ifname), None)

    def _rollback(self, config: NetworkConfig, upto: int, netns: str, cid: str, ifname: str, failed: CniError) -> str:
        """DEL what the failed ADD may have made; says in words how that went."""
        errors = []
        for i in reversed(range(upto + 1)):
            try:
                self._exec("DEL", config, i, netns, cid, ifname, None)
            except CniError as exc:
                errors.append(exc)
        if not errors:
            return " (undone with DEL)"
        if [e.message for e in errors] == [failed.message.replace(" ADD ", " DEL ", 1)]:
            return " (DEL rejects the config the same way: the plugin stopped before changing anything)"
        return "; undoing it with DEL also failed, the lab may hold leftovers: " + " / ".join(e.message for e in errors)

    def _container(self, container: Netns | str) -> tuple[str, str]:
        """CNI_NETNS and CNI_CONTAINERID for a lab namespace, its name, or a namespace path."""
        if isinstance(container, Netns):
            path, cid = container.path, container.name
        elif container.startswith("/"):
            path, cid = container, os.path.basename(container)
        else:
            ns = self.lab.ns(container)
            path, cid = ns.path, ns.name
        _check_netns(path)
        if not _CONTAINER_ID.match(cid):
            raise CniError("CNI_CONTAINERID", f"{cid!r} may hold only letters, digits, '_', '.' and '-', starting with a letter or digit")
        return path, cid

    def _exec(self, command: str, config: NetworkConfig, i: int, netns: str, cid: str, ifname: str, prev: dict | None) -> dict | None:
        plugin = config.plugins[i]["type"]
        binary = self._binary(plugin, f"{config.file}: plugins[{i}].type")
        ipam = config.plugins[i].get("ipam")
        self.used.update({plugin: None, **({ipam["type"]: None} if isinstance(ipam, dict) and "type" in ipam else {})})
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_PATH": str(self.plugin_dir),
            "CNI_ARGS": "",
        }
        stdin = json.dumps(config.plugin_config(i, prev)).encode()
        start = time.perf_counter()
        try:
            done = self.lab.ns(self.host).run([str(binary)], input=stdin, env=env, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise CniError(f"{config.file}: plugins[{i}]", f"{plugin} {command} for {cid!r} did not finish within {self.timeout:.0f} s") from None
        self.calls.append(Call(command, plugin, cid, time.perf_counter() - start))
        if done.returncode != 0:
            raise _plugin_error(config, i, command, cid, done)
        if command != "ADD":
            return None
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            raise CniError(f"{config.file}: plugins[{i}]", f"{plugin} ADD for {cid!r} printed no result JSON: {done.stdout[:200]!r}") from None

    # -- what a runtime does per pod ---------------------------------------------------
    def attach(self, net: PodNetwork) -> dict[str, dict[str, Any]]:
        """Start each of *net*'s containers as a runtime does: `lo` up with the
        loopback plugin, then ADD to the network (installed first if missing)."""
        names = {read_config(p).name for p in self.netd.iterdir() if p.suffix in CONFIG_SUFFIXES}
        if net.name not in names:
            self.install(net.conflist())
        if LOOPBACK["name"] not in names:
            self.install(LOOPBACK, priority=99)
        results = {}
        for c in net.containers:
            self.add(LOOPBACK["name"], c, ifname="lo")
            results[c] = self.add(net.name, c, ifname=net.ifname)
        return results

    def detach(self, net: PodNetwork) -> None:
        """Stop the containers: DEL from the network, then from loopback, last container first."""
        for c in reversed(net.containers):
            self.delete(net.name, c, ifname=net.ifname)
            self.delete(LOOPBACK["name"], c, ifname="lo")

    # -- what CNI left in the lab ---------------------------------------------------------
    def reservations(self, network: str) -> list[str]:
        """The addresses host-local holds for *network* (its files named after an IP)."""
        directory = self.ipam_dir / network
        return sorted(p.name for p in directory.iterdir() if _is_ip(p.name)) if directory.exists() else []

    def nat_rules(self, ns: str | None = None) -> list[str]:
        """`iptables -t nat -S` in a lab namespace (the host by default), without the built-in policies."""
        done = self.lab.ns(ns or self.host).run(["iptables", "-t", "nat", "-S"])
        if done.returncode != 0:
            raise CniError("iptables", f"`iptables -t nat -S` in {ns or self.host!r} failed: {done.stderr.decode().strip()}")
        return [line for line in done.stdout.decode().splitlines() if not line.startswith("-P ")]

    def note(self) -> str:
        """`lab_note()` for the plugins (and IPAM plugins) this runtime has run."""
        return lab_note(tuple(self.used) or ("bridge", "host-local", "loopback"), self.plugin_dir)


def _check_netns(path: str) -> None:
    """CNI_NETNS must name a network namespace; caught here, before any plugin runs."""
    fix = "create the container's namespace first (lab.add_namespace) and pass lab.ns(NAME)"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CniError("CNI_NETNS", f"{path!r}: {exc.strerror}; {fix}") from None
    try:
        kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        kind = None
    finally:
        os.close(fd)
    if kind != CLONE_NEWNET:
        raise CniError("CNI_NETNS", f"{path!r} is not a network namespace; {fix}")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# Known plugin messages -> (the config key or env variable at fault, how to fix it)
_HINTS = (
    (re.compile(r"no IP addresses available|no more addresses|range is full", re.IGNORECASE), "ipam.ranges", "the range is exhausted: widen the subnet or DEL containers that are gone"),
    (re.compile(r"failed to open netns|Statfs", re.IGNORECASE), "CNI_NETNS", "the container's namespace path must exist"),
    (re.compile(r"incompatible CNI versions", re.IGNORECASE), "cniVersion", "use a version the plugin supports"),
    (re.compile(r"failed to find plugin", re.IGNORECASE), "ipam.type", "name an installed plugin"),
    (re.compile(r"unmarshal|decod|invalid character|json", re.IGNORECASE), "config", "fix the JSON types of the keys"),
)


def _plugin_error(config: NetworkConfig, i: int, command: str, cid: str, done: subprocess.CompletedProcess) -> CniError:
    """CNI error JSON on stdout -> one line naming the key to fix."""
    plugin = config.plugins[i]["type"]
    text = done.stdout.decode(errors="replace").strip()
    try:
        err = json.loads(text)
        code, msg, details = err.get("code"), err.get("msg", ""), err.get("details", "")
    except (json.JSONDecodeError, AttributeError):
        code, msg, details = None, text or done.stderr.decode(errors="replace").strip(), ""
    key, fix = "", ""
    for pattern, hint_key, hint_fix in _HINTS:
        if pattern.search(f"{msg} {details}"):
            key, fix = hint_key, hint_fix
            break
    where = key if key.startswith("CNI_") else f"{config.file}: plugins[{i}]" + (f".{key}" if key and key != "config" else "")
    said = msg + (f" ({details})" if details else "")
    return CniError(where, f"{plugin} {command} for {cid!r} failed with CNI error {code}: {said}" + (f"; {fix}" if fix else ""), code=code)


LOOPBACK: dict[str, Any] = {"cniVersion": "1.0.0", "name": "lo", "plugins": [{"type": "loopback"}]}

__all__ = [
    "LOOPBACK",
    "CniError",
    "CniUnavailable",
    "NetworkConfig",
    "Runtime",
    "find_plugins",
    "lab_note",
    "read_config",
    "unavailable",
    "versions",
]
