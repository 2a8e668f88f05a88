"""Where the reference CNI plugins are installed, and which version each one is.

The directory is looked up, never assumed: $NSLAB_CNI_PATH, where Debian's
`containernetworking-plugins` put `bridge`, else the usual places.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

PACKAGE = "containernetworking-plugins"
KNOWN_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni", "/usr/local/lib/cni")


class CniUnavailable(RuntimeError):
    """The reference plugins are not installed here; the message says how to get them."""


def find_plugins() -> Path:
    """The plugin directory: $NSLAB_CNI_PATH, else where the Debian package put
    `bridge`, else the usual places. Never guessed as one fixed path."""
    candidates = [os.environ["NSLAB_CNI_PATH"]] if os.environ.get("NSLAB_CNI_PATH") else []
    candidates += [os.path.dirname(p) for p in _dpkg_files() if os.path.basename(p) == "bridge"]
    candidates += KNOWN_DIRS
    for directory in candidates:
        if os.access(os.path.join(directory, "bridge"), os.X_OK):
            return Path(directory)
    raise CniUnavailable(
        f"no CNI reference plugins found (looked in {', '.join(dict.fromkeys(candidates))}); "
        f"install them with `apt-get install -y {PACKAGE}` or set NSLAB_CNI_PATH"
    )


def unavailable() -> str | None:
    """None when the plugins are installed, else one sentence saying how to install them."""
    try:
        find_plugins()
    except CniUnavailable as exc:
        return str(exc)
    return None


@functools.cache
def _dpkg_files() -> tuple[str, ...]:
    """What the package installed, asked once per process: dpkg reads its whole database
    for it, which is slow where files are (a guest reading the host's disk over 9p)."""
    try:
        done = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(done.stdout.split()) if done.returncode == 0 else ()


@functools.cache
def _package_of(path: Path) -> str | None:
    """'containernetworking-plugins 1.1.1+ds1-3+b5' when dpkg owns *path*. The package's own
    file list answers for its plugins; `dpkg -S` (which reads every package's list) only
    for a binary from elsewhere."""
    try:
        if str(path.resolve()) in _dpkg_files() or str(path) in _dpkg_files():
            pkg = PACKAGE
        else:
            owner = subprocess.run(["dpkg", "-S", str(path.resolve())], capture_output=True, text=True, timeout=10, check=False)
            if owner.returncode != 0:
                return None
            pkg = owner.stdout.split(":", 1)[0].strip()
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"{pkg} {version.stdout.strip()}" if version.returncode == 0 else pkg


def versions(types: tuple[str, ...] = ("bridge", "ptp", "host-local", "loopback"), plugin_dir: Path | None = None) -> dict[str, Any]:
    """Which binaries, from which package, speaking which CNI versions.

    `version` is what the binary prints about itself when run with no
    CNI_COMMAND (Debian's build says 'version unknown'); `cni_versions` is
    its answer to CNI_COMMAND=VERSION.
    """
    directory = plugin_dir or find_plugins()
    out: dict[str, Any] = {"dir": str(directory), "plugins": {}}
    for name in types:
        path = directory / name
        if not os.access(path, os.X_OK):
            out["plugins"][name] = {"path": str(path), "version": "missing", "cni_versions": [], "package": None}
            continue
        about = subprocess.run([str(path)], capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")}, timeout=10, check=False)
        asked = subprocess.run([str(path)], input='{"cniVersion":"1.0.0"}', capture_output=True, text=True, env={"CNI_COMMAND": "VERSION"}, timeout=10, check=False)
        first = (about.stdout + about.stderr).strip().splitlines()
        out["plugins"][name] = {
            "path": str(path),
            "version": first[0] if first else "(no output)",
            "cni_versions": json.loads(asked.stdout).get("supportedVersions", []) if asked.returncode == 0 else [],
            "package": _package_of(path),
        }
    return out


@functools.lru_cache(maxsize=16)
def lab_note(types: tuple[str, ...] = ("bridge", "ptp", "host-local", "loopback"), plugin_dir: Path | None = None) -> str:
    """One line for a report: which plugin binaries (and package) built the lab."""
    info = versions(types, plugin_dir)
    packages = sorted({p["package"] or "no package" for p in info["plugins"].values()})
    parts = [
        f"{name} ({p['version'].replace(f'CNI {name} plugin ', '')}; CNI {p['cni_versions'][-1] if p['cni_versions'] else '?'})" for name, p in info["plugins"].items()
    ]
    return f"CNI plugins from {info['dir']} [{', '.join(packages)}]: " + ", ".join(parts)
