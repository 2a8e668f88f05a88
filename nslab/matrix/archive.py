"""Debian's kernels for the matrix, from Debian's archive, without touching the host's apt.

nslab keeps its own apt directory in its cache (nslab.matrix.cache: `~/.cache/nslab/apt/`,
shared by every checkout): a sources.list naming the
suites that hold the kernels worth testing (bookworm and its security and
backports suites for 6.1 and 6.12, trixie for 6.12, trixie-backports and sid
for the newest), its own lists, state and package cache. Every apt call names
them (`apt-get -o Dir::Etc::SourceList=... -o Dir::State=... -o Dir::Cache=...`),
so the host's /etc/apt and /var/lib/apt are read (its mirror, its proxy
settings in apt.conf.d) and never written, and `6.1`, `6.12` and `newest`
resolve on a stock Debian 12 whose own lists know no 6.12.

    package_for("6.12")       # 'linux-image-6.12.118+deb13-amd64'
    fetch(package_for("6.1")) # ~/.cache/nslab/kernels/linux-image-6.1.0-57-amd64/boot/vmlinuz-...
    python -m nslab.matrix.archive 6.1 6.12 newest   # the same, from a shell

The lists are refreshed when they are a day old (or when the mirror in the
host's sources changed); a download the archive no longer has (a superseded
security update) refreshes them once and retries. A kernel that cannot be had
is an ArchiveError whose message is one line.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from nslab.kernel import leftovers
from nslab.matrix import cache as shared
from nslab.matrix.kernels import RELEASES

ROOT = Path(__file__).resolve().parents[2]
ETC_APT = Path("/etc/apt")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Debian's defaults (what a Debian 12 installer writes), used when the host's sources name no Debian mirror.
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
SUITES = ("bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports", "sid")
SECURITY_SUITES = ("bullseye-security", "bookworm-security", "trixie-security")
DEBIAN_SUITES = {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
                 "oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental"}
FLAVOURS = {"": "amd64", "cloud": "cloud-amd64", "rt": "rt-amd64"}
MAX_AGE = 24 * 3600.0  # seconds before the lists are refreshed


def apt_directory() -> Path:
    """nslab's own apt directory, in the cache every checkout shares."""
    return shared.root() / "apt"


def kernels_directory() -> Path:
    """Where kernel packages are unpacked, one tree per package, in the shared cache."""
    return shared.root() / "kernels"


class ArchiveError(Exception):
    """A kernel that cannot be had; the message is one line saying why and what to do."""


# -- the host's mirror ---------------------------------------------------------
def host_mirrors(etc: Path = ETC_APT) -> tuple[str, str]:
    """(archive URI, security URI) of the Debian mirror the host's apt sources use,
    Debian's defaults for what they do not name (an Ubuntu host, say).

    A source is Debian's when its suite is a Debian suite (bookworm, bookworm-updates,
    trixie-security, stable, ...) and it has the main component: a third-party
    repository for Debian (suite bookworm, component stable) is not."""
    archive = security = None
    for uri, suite, components in _host_sources(etc):
        if "main" not in components or not re.fullmatch(rf"({'|'.join(DEBIAN_SUITES)})(-(updates|backports|security|proposed-updates)|/updates)?", suite):
            continue
        if suite.endswith(("-security", "/updates")):
            security = security or uri
        else:
            archive = archive or uri
    return (archive or DEFAULT_MIRROR).rstrip("/"), (security or DEFAULT_SECURITY).rstrip("/")


def _host_sources(etc: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(URI, suite, components) of every enabled binary source in sources.list, *.list and *.sources."""
    parts = etc / "sources.list.d"
    for path in [etc / "sources.list", *sorted(parts.glob("*.list"))]:
        for line in _read(path).splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # without [options]
            if len(words) >= 4 and words[0] == "deb":
                yield words[1], words[2], words[3:]
    for path in sorted(parts.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", _read(path)):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:  # a continuation line
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    yield uri, suite, fields.get("components", "").split()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# -- nslab's own apt directory -----------------------------------------------------
def sources_list(etc: Path = ETC_APT) -> str:
    """The private sources.list: the kernel suites, from the host's mirror."""
    archive, security = host_mirrors(etc)
    lines = ["# written by nslab (nslab.matrix.archive); the host's apt configuration is not touched"]
    lines += [f"deb [signed-by={KEYRING}] {archive} {suite} main" for suite in SUITES]
    lines += [f"deb [signed-by={KEYRING}] {security} {suite} main" for suite in SECURITY_SUITES]
    return "\n".join(lines) + "\n"


def apt_options(apt_dir: Path | None = None) -> list[str]:
    """`-o` options that point apt at *apt_dir* for sources, pins, lists, state and caches."""
    apt_dir = apt_dir or apt_directory()
    options = {
        "Dir::Etc::SourceList": apt_dir / "sources.list",
        "Dir::Etc::SourceParts": apt_dir / "sources.list.d",
        "Dir::Etc::Preferences": apt_dir / "preferences",
        "Dir::Etc::PreferencesParts": apt_dir / "preferences.d",
        "Dir::State": apt_dir / "state",
        "Dir::Cache": apt_dir / "cache",
        # The package cache on (Debian's container images turn it off, and each call would parse the
        # lists again); the source cache off: apt builds the package cache without it, and the
        # lists' first `apt-get update` took 7.7 s of CPU instead of 8.8 (113 MB less in the cache).
        "Dir::Cache::pkgcache": "pkgcache.bin",
        "Dir::Cache::srcpkgcache": "",
        "Acquire::Languages": "none",
    }
    if os.geteuid() == 0:
        # apt would download as user _apt, who cannot enter a checkout under a mode-700 home.
        options["APT::Sandbox::User"] = "root"
    return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]


@contextlib.contextmanager
def _locked(apt_dir: Path, exclusive: bool) -> Iterator[None]:
    """Serialise refreshes against readers, across processes (xdist workers, two matrix runs).
    A reader needs only to read the lock file (a user who may not write the cache can still read it)."""
    path = apt_dir / "lock"
    try:
        lock = open(path, "a" if exclusive or not path.exists() else "r")
    except OSError as exc:
        raise ArchiveError(f"cannot use nslab's apt directory {apt_dir} ({exc.strerror}); run as its owner, or set XDG_CACHE_HOME to a directory you may write") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stale(apt_dir: Path, etc: Path, max_age: float) -> bool:
    """Do the lists need `apt-get update`: none yet, a day old, or sources for another mirror?"""
    try:
        age = time.time() - (apt_dir / "updated").stat().st_mtime
    except FileNotFoundError:
        return True
    return age > max_age or _read(apt_dir / "sources.list") != sources_list(etc)


def _prepare(apt_dir: Path, etc: Path) -> bool:
    """Create the directory tree and write sources.list; True if its contents changed."""
    if shutil.which("apt-get") is None:
        raise ArchiveError("Debian kernels come from Debian's archive through apt-get, which is not installed here; use 'host' or a Debian/Ubuntu machine")
    if not KEYRING.exists():
        raise ArchiveError(f"{KEYRING} is missing, so Debian's archive cannot be verified: apt-get install debian-archive-keyring")
    try:
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            (apt_dir / sub).mkdir(parents=True, exist_ok=True)
        wanted = sources_list(etc)
        current = apt_dir / "sources.list"
        if _read(current) == wanted:
            return False
        current.write_text(wanted)
        return True
    except OSError as exc:
        raise ArchiveError(f"cannot write nslab's apt directory {apt_dir} ({exc.strerror}); run as its owner, or set XDG_CACHE_HOME to a directory you may write") from None


def refresh(apt_dir: Path | None = None, *, etc: Path = ETC_APT, force: bool = False, max_age: float = MAX_AGE) -> None:
    """`apt-get update` into *apt_dir* if its lists are missing, older than *max_age*,
    for another mirror, or *force*d. A failed refresh with usable old lists is remembered
    (see `problem`) rather than raised; without any lists it raises."""
    apt_dir = apt_dir or apt_directory()
    if not force and not _stale(apt_dir, etc, max_age):
        return  # fresh: nothing to write (so a user who may only read the cache can use it)
    try:
        apt_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot create nslab's apt directory {apt_dir} ({exc.strerror}); run as its owner, or set XDG_CACHE_HOME to a directory you may write") from None
    with _locked(apt_dir, exclusive=True):
        changed = _prepare(apt_dir, etc)
        if not (force or changed or _stale(apt_dir, etc, max_age)):
            return  # another process refreshed them while we waited for the lock
        stamp = apt_dir / "updated"
        done = _apt(["apt-get", "update", "-q"], apt_dir)
        shutil.rmtree(apt_dir / "queries", ignore_errors=True)  # answers from the lists before (see _query)
        problem = apt_dir / "update-problem"
        if done.returncode == 0:
            problem.unlink(missing_ok=True)
        else:
            problem.write_text(_apt_error(done) + "\n")
        stamp.touch()  # also after a failure: one try a day, not one per call
        if done.returncode != 0 and not any((apt_dir / "state" / "lists").glob("*Packages*")):
            raise ArchiveError(f"apt-get update of nslab's lists from Debian's archive failed: {_apt_error(done)}")


def problem(apt_dir: Path | None = None) -> str | None:
    """Why the last refresh failed (one line), or None."""
    apt_dir = apt_dir or apt_directory()
    text = _read(apt_dir / "update-problem").strip()
    return text or None


def _apt(argv: list[str], apt_dir: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
    return subprocess.run([argv[0], *apt_options(apt_dir), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _query(argv: list[str], apt_dir: Path) -> subprocess.CompletedProcess:
    """A read-only `apt-cache` query, answered from its remembered output while the lists it
    read are the same. Each query parses every list again (0.1 to 0.2 CPU-seconds) and a matrix
    run asks the same ones each time; the memo sits beside the lists, keyed by the query, the
    lists' names, sizes and times, and apt-cache's own binary. Not writable: asked every time."""
    lists = apt_dir / "state" / "lists"
    binary = shutil.which(argv[0]) or argv[0]
    try:
        listed = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(lists) if e.is_file())
        tool = os.stat(binary)
    except OSError:
        return _apt(argv, apt_dir)
    key = hashlib.sha256(repr((argv, listed, binary, tool.st_size, tool.st_mtime_ns)).encode()).hexdigest()
    memo = apt_dir / "queries" / key
    with contextlib.suppress(OSError):
        return subprocess.CompletedProcess(argv, 0, memo.read_text(), "")
    done = _apt(argv, apt_dir)
    if done.returncode == 0:
        with contextlib.suppress(OSError):
            memo.parent.mkdir(exist_ok=True)
            partial = memo.with_name(f"{key}.{os.getpid()}")
            partial.write_text(done.stdout)
            partial.replace(memo)  # whole or absent: another reader never sees half of it
    return done


def _apt_error(done: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "W:", "Err:"))]
    return (errors[0] if errors else lines[-1] if lines else f"exit status {done.returncode}")[:300]


# -- kernels ----------------------------------------------------------------------
def available(apt_dir: Path | None = None, *, etc: Path = ETC_APT) -> list[str]:
    """Every linux-image-* package the private lists offer (real packages, not virtual names)."""
    apt_dir = apt_dir or apt_directory()
    refresh(apt_dir, etc=etc)
    with _locked(apt_dir, exclusive=False):
        done = _query(["apt-cache", "search", "--names-only", r"^linux-image-[0-9]"], apt_dir)
    if done.returncode != 0:
        raise ArchiveError(f"apt-cache on nslab's lists failed: {_apt_error(done)}")
    return sorted({line.split()[0] for line in done.stdout.splitlines() if line.strip()})


def version_key(package: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", package))


def choose(name: str, packages: list[str]) -> str | None:
    """The newest signed kernel image among *packages* for '6.1', '6.12-cloud', 'newest', 'newest-rt' ..."""
    version, _, flavour = name.partition("-")
    if flavour not in FLAVOURS:
        return None
    upstream = r"\d+\.\d+" if version == "newest" else re.escape(version)
    pattern = re.compile(rf"linux-image-{upstream}(\.\d+)*(-\d+|\+deb\d+(\.\d+)*|\+bpo)-{FLAVOURS[flavour]}")
    found = [p for p in packages if pattern.fullmatch(p)]
    return max(found, key=version_key) if found else None


def package_for(name: str, apt_dir: Path | None = None, *, etc: Path = ETC_APT) -> str:
    """The Debian package for a kernel name as `nslab matrix` takes it (a linux-image-* name as it is)."""
    apt_dir = apt_dir or apt_directory()
    if name.startswith("linux-image-"):
        return name
    if name in RELEASES:
        return release_kernel(name, apt_dir, etc=etc)
    found = choose(name, available(apt_dir, etc=etc))
    if found is None:
        why = problem(apt_dir)
        version, _, flavour = name.partition("-")
        where = f"{', '.join(SUITES + SECURITY_SUITES)} on {host_mirrors(etc)[0]}"
        raise ArchiveError(f"kernel {name!r}: Debian's archive has no linux-image-{version}*-{FLAVOURS.get(flavour, flavour)} in {where}"
                           + (f" (the last refresh failed: {why})" if why else ""))
    return found


def suite_version(package: str, release: str, apt_dir: Path | None = None, *, etc: Path = ETC_APT) -> str | None:
    """The newest version of *package* that *release* itself ships (its security updates
    included, its backports not), from nslab's lists; None if it has none."""
    apt_dir = apt_dir or apt_directory()
    refresh(apt_dir, etc=etc)
    with _locked(apt_dir, exclusive=False):
        listed = _query(["apt-cache", "madison", package], apt_dir)
    # madison lists newest first: "linux-image-amd64 | 6.12.118-1 | http://... trixie-security/main amd64 Packages"
    return next((cols[1].strip() for cols in (line.split("|") for line in listed.stdout.splitlines())
                 if len(cols) == 3 and len(cols[2].split()) > 1 and cols[2].split()[1].split("/")[0] in (release, f"{release}-security", f"{release}-updates")), None)


def release_kernel(release: str, apt_dir: Path | None = None, *, etc: Path = ETC_APT) -> str:
    """The kernel package a Debian release itself ships: 'linux-image-6.12.118+deb13-amd64' for trixie."""
    apt_dir = apt_dir or apt_directory()
    version = suite_version("linux-image-amd64", release, apt_dir, etc=etc)
    if version is None:
        raise ArchiveError(f"release {release!r}: Debian's archive has no linux-image-amd64 in {release} or {release}-security on {host_mirrors(etc)[0]}")
    with _locked(apt_dir, exclusive=False):
        shown = _query(["apt-cache", "show", f"linux-image-amd64={version}"], apt_dir)
    found = re.search(r"^Depends:.*?\b(linux-image-[^\s,(]+)", shown.stdout, re.MULTILINE)
    if found is None:
        raise ArchiveError(f"release {release!r}: linux-image-amd64 {version} names no kernel image package")
    return found.group(1)


def download(package: str, dest: Path, apt_dir: Path | None = None, *, etc: Path = ETC_APT) -> Path:
    """`apt-get download` *package* into *dest*; the .deb's path. Refreshes the lists once if the archive moved on."""
    apt_dir = apt_dir or apt_directory()
    refresh(apt_dir, etc=etc)
    for attempt in (1, 2):
        with _locked(apt_dir, exclusive=False):
            done = _apt(["apt-get", "download", "-q", package], apt_dir, cwd=dest)
        debs = sorted(dest.glob("*.deb"))
        if done.returncode == 0 and debs:
            return debs[0]
        if attempt == 1:
            refresh(apt_dir, etc=etc, force=True)
    raise ArchiveError(f"downloading {package} from Debian's archive failed: {_apt_error(done)}")


def fetch(package: str, cache: Path | None = None, apt_dir: Path | None = None) -> Path:
    """The kernel image of *package*, downloaded and unpacked into the shared cache once (never installed).

    Under the entry's lock: a second run that wants the same kernel waits for the first
    one's download and uses it, and a download killed half-way (a `.partial-<run>`
    directory) never counts."""
    tree = (cache or kernels_directory()) / package
    images = sorted(tree.glob("boot/vmlinuz-*"))
    if images:
        return images[0]
    with shared.lock(tree):
        if not any(tree.glob("boot/vmlinuz-*")):  # nobody fetched it while we waited
            _download_into(package, tree, apt_dir)
    images = sorted(tree.glob("boot/vmlinuz-*"))
    if not images:
        raise ArchiveError(f"{package}: no boot/vmlinuz-* in the package; is it a kernel image package?")
    return images[0]


def _download_into(package: str, tree: Path, apt_dir: Path | None) -> None:
    partial = leftovers.partial_in(tree.parent)
    partial.mkdir()
    try:
        deb = download(package, partial, apt_dir)
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(partial / "root")], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ArchiveError(f"unpacking {deb.name} failed: {_apt_error(done)}")
        (partial / "root").rename(tree)
    except FileNotFoundError as exc:
        raise ArchiveError(f"{exc.filename} is not installed (Debian: apt-get install apt dpkg)") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def modules_dir(image: Path) -> Path:
    """The lib/modules directory of an unpacked kernel package, given its image
    (usr/lib/modules in packages built for a merged /usr, such as trixie's)."""
    tree = image.parents[1]
    return next((d for d in (tree / "usr" / "lib" / "modules", tree / "lib" / "modules") if d.is_dir()), tree / "lib" / "modules")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nslab.matrix.archive", description="Resolve kernel names to Debian packages through nslab's private apt lists.")
    parser.add_argument("kernels", nargs="+", metavar="KERNEL", help="6.1, 6.1-cloud, 6.12, newest, newest-rt, ...")
    parser.add_argument("--refresh", action="store_true", help="apt-get update the private lists first, whatever their age")
    parser.add_argument("--fetch", action="store_true", help="also download and unpack each kernel into the cache (once), and print its image")
    args = parser.parse_args(argv)
    try:
        if args.refresh:
            refresh(force=True)
        for name in args.kernels:
            package = package_for(name)
            print(f"{name} {package}" + (f" {fetch(package)}" if args.fetch else ""))
    except ArchiveError as exc:
        print(f"nslab archive: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
