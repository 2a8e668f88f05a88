"""What a matrix guest sees and runs: the root filesystem, the project, the kernel's
modules and the report directory, each exported over 9p with the caching that suits
it, and the script that puts them in place and runs the suite.

virtme-ng exports the guest's root over 9p without a cache: every stat, open and
read is a round trip to QEMU. Under TCG that made Python's start-up 75 times
slower than on the host (1.3 s for `python -c pass`), and each of the suite's
1,100 execs (most of them the CNI plugins' iptables) paid it again. A second
export of the same root, mounted read-only with `cache=loose`, lets the guest's
page cache keep what it read (`python -c pass` 0.27 s, `import pytest` 2 s
instead of 6). The guest runs with an overlay of that copy on its /usr and the
project mounted at its own path, so paths and reports are the same as on the
host. An interpreter outside /usr (pyenv's, in /root/.pyenv) is bound read-only
from the cached copy too: read over the uncached root, its standard library made
`python -c pass` 4.3 CPU-seconds instead of 1.3, and every import paid for it. The
kernel package's modules, unpacked in nslab's shared cache (outside the
root a release's userland gives the guest), are a third cached export, mounted on
its /usr/lib/modules. The report directory is a fourth, uncached and writable, so what
the guest writes reaches the host at once; it also carries the guest's script,
`guest.sh`, since a command given on the kernel's command line must fit in
its 2 KiB.

Only the report directory is written: the root and the project are exported
read-only (`readonly=on`), and loose caching is safe for files that do not
change while the guest runs.

Replacing these exports was measured (6.1 under TCG, three guests side by side on
a host at load 25 to 45, host CPU seconds of each VM's processes for a boot, three
`python -c pass` and two `import pytest`): 9p as here 54.2 s; Python's standard
library and the venv from erofs images on virtio-blk 51.3 s; those images with /usr
and the project over virtiofs (Debian's C virtiofsd, cache=always) 59.1 s. The guest
is bound by TCG's emulation, not by these round trips, so the simplest stays.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

NINEP = "trans=virtio,version=9p2000.L,access=any,msize=524288"
# Read by every exec, and over the uncached root until bound from the cached copy: the dynamic
# loader's cache, and the links by which `iptables` (the CNI plugins', 609 execs a suite) finds
# iptables-nft. Alternated on 6.1 under TCG, `./run matrix 6.1` took 136.3 and 161.2 s with them
# bound, 166.0 and 206.1 s without (a noisy hour: the same column had taken 120 to 141 s).
ETC_CACHED = ("/etc/ld.so.cache", "/etc/alternatives")
OUT = "/run/nslab-out"  # where the report directory is mounted first, to read the script from it
SCRIPT = "guest.sh"
KERNEL_LOG = "kernel.log"  # the guest kernel's messages, where the suite failed


def _export(tag: str, path: Path, *, readonly: bool) -> str:
    return (f"-fsdev local,id={tag},path={path},security_model=none{',readonly=on' if readonly else ''},multidevs=remap "
            f"-device virtio-9p-pci,fsdev={tag},mount_tag={tag}")


def qemu_options(system: Path, project: Path, modules: Path, out: Path) -> str:
    """QEMU's options for the four exports (vng's `--qemu-opts=`)."""
    return " ".join([_export("nslabsys", system, readonly=True), _export("nslabproject", project, readonly=True),
                     _export("nslabmodules", modules, readonly=True), _export("nslabout", out, readonly=False)])


def _program(root: Path, name: str) -> Path | None:
    return next((root / where / name for where in ("usr/bin", "bin") if (root / where / name).exists()), None)


def without_boot_tmpfiles(argv: list[str], root: Path) -> list[str]:
    """vng's *argv*, run where the guest's systemd-tmpfiles is its `true`.

    virtme-ng-init runs `systemd-tmpfiles --create --boot` wherever /etc/systemd exists,
    and has no option to skip it. Under TCG that took 3.5 and 5.2 s of a 6.1 boot here;
    skipped, 0.5 s, and the guest's script started at 6.5 s instead of 10.2 and 12.9. The
    guest's /run and /tmp are new tmpfs, and the suite uses nothing it makes. So QEMU, whose
    9p server is the guest's root, runs in a private mount namespace in which *root*'s
    systemd-tmpfiles is a bind mount of *root*'s own `true`; no mount of this machine
    changes. Only root can mount: another user's guest boots as before, and the guest's
    first line says which it was (`TMPFILES_STATE`)."""
    tmpfiles, true = _program(root, "systemd-tmpfiles"), _program(root, "true")
    if os.geteuid() != 0 or tmpfiles is None or true is None or shutil.which("unshare") is None:
        return argv
    bind = 'mount --bind "$1" "$2" || echo "nslab-matrix: $2 not replaced: the boot runs it" >&2; shift 2; exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", bind, "sh", str(true), str(tmpfiles), *argv]


# What the guest's boot did with systemd-tmpfiles, as a shell word: skipped, ran or absent
TMPFILES_STATE = ("$(if [ ! -e /usr/bin/systemd-tmpfiles ]; then echo absent; "
                  "elif cmp -s /usr/bin/systemd-tmpfiles /usr/bin/true; then echo skipped; else echo ran; fi)")


def command() -> str:
    """The guest's whole command line: mount the report directory, run the script in it."""
    return f"mkdir -p {OUT} && mount -t 9p -o rw,{NINEP} nslabout {OUT} && exec sh {OUT}/{SCRIPT}"


def outside_usr(path: Path, project: Path) -> tuple[Path, ...]:
    """(*path*,) if the guest would read it over the uncached root: not under /usr nor *project*."""
    if path.is_relative_to("/usr") or path.is_relative_to(project) or path == Path("/"):
        return ()
    return (path,)


def write_script(project: Path, out: Path, body: str, *, binds: tuple[Path, ...] = ()) -> None:
    """`guest.sh` in the report directory: the exports in place, then *body*, output to guest.log.
    *binds*: directories of the root (outside /usr) bound from the cached, read-only copy.

    A failed cached mount is said in guest.log and the suite runs from the
    uncached root, slower but the same."""
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    cached = f"ro,{NINEP},cache=loose"
    bound = "".join(f" \\\n   && mount --bind /run/nslab-sys{q(path)} {q(path)}" for path in binds)
    (out / SCRIPT).write_text("\n".join([
        "# written by nslab matrix: what the guest ran",
        f"exec >{OUT}/guest.log 2>&1",
        "mkdir -p /run/nslab-sys /run/nslab-usr/upper /run/nslab-usr/work",
        # /usr becomes an overlay on the cached copy, writable as virtme-ng's was
        f"if mount -t 9p -o {cached} nslabsys /run/nslab-sys && mount -t 9p -o {cached} nslabproject {q(project)} \\",
        "   && mount -t overlay nslab-usr -o lowerdir=/run/nslab-sys/usr,upperdir=/run/nslab-usr/upper,workdir=/run/nslab-usr/work /usr \\",
        f"   && mkdir -p /usr/lib/modules && mount -t 9p -o {cached} nslabmodules /usr/lib/modules{bound}; then :",
        "else echo 'nslab-matrix: no cached root, running from the uncached one'; fi",
        # what every exec reads outside /usr: the loader's cache, and the alternatives' links (iptables)
        f"for f in {' '.join(ETC_CACHED)}; do [ ! -e /run/nslab-sys$f ] || mount --bind /run/nslab-sys$f $f || echo \"nslab-matrix: $f read over the uncached root\"; done",
        f"mount --bind {OUT} {q(out)} || exit 1",
        body,
        # a suite that fails leaves what the kernel said beside guest.log (one 6.12 column stopped after
        # 22 tests without its summary, exit 255, and passed again alone): an OOM kill, a hung task
        "status=$?",
        f'[ "$status" -eq 0 ] || dmesg > {OUT}/{KERNEL_LOG} 2>&1',
        'exit "$status"',
        "",
    ]))
