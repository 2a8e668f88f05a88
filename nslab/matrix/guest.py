"""What a matrix guest sees and runs: the root filesystem, the project and the report
directory, each exported over 9p with the caching that suits it, and the script
that puts them in place and runs the suite.

virtme-ng exports the guest's root over 9p without a cache: every stat, open and
read is a round trip to QEMU. Under TCG that made Python's start-up 75 times
slower than on the host (1.3 s for `python -c pass`), and each of the suite's
1,100 execs (most of them the CNI plugins' iptables) paid it again. A second
export of the same root, mounted read-only with `cache=loose`, lets the guest's
page cache keep what it read (`python -c pass` 0.27 s, `import pytest` 2 s
instead of 6). The guest runs with an overlay of that copy on its /usr and the
project mounted at its own path, so paths and reports are the same as on the
host. The report directory is a third export, uncached and writable, so what
the guest writes reaches the host at once; it also carries the guest's script,
`guest.sh`, since a command given on the kernel's command line must fit in
its 2 KiB.

Only the report directory is written: the root and the project are exported
read-only (`readonly=on`), and loose caching is safe for files that do not
change while the guest runs.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from nslab.matrix.images import Image

NINEP = "trans=virtio,version=9p2000.L,access=any,msize=524288"
OUT = "/run/nslab-out"  # where the report directory is mounted first, to read the script from it
SCRIPT = "guest.sh"
VIRTIOFSD = Path("/usr/lib/qemu/virtiofsd")  # Debian's QEMU (qemu-system-common): the C daemon, run as root


@dataclass(frozen=True)
class Exports:
    """How the guest reads its /usr and the project: 'virtiofs' (a virtiofsd per export,
    each in a private mount namespace on a read-only bind of its directory) or '9p'."""

    system: Path  # the root whose /usr the guest runs
    project: Path
    out: Path
    modules: Path  # the unpacked kernel package's lib/modules, in the shared cache
    transport: str  # 'virtiofs' or '9p'
    sockets: Path | None = None  # virtiofsd's sockets (virtiofs only)
    memory: str = "1G"  # virtiofs shares the guest's memory with its daemons: the same size as vng's --memory
    images: tuple[Image, ...] = ()  # read-only disks mounted over their directories (nslab.matrix.images)

    def qemu_options(self) -> str:
        """QEMU's options for the exports (vng's `--qemu-opts=`); the report directory is always 9p, uncached."""
        if self.transport == "9p":
            shared = [_ninep("nslabsys", self.system, readonly=True), _ninep("nslabproject", self.project, readonly=True)]
        else:
            shared = [f"-chardev socket,id={tag},path={self._socket(tag)} -device vhost-user-fs-pci,chardev={tag},tag={tag}" for tag in ("nslabsys", "nslabproject")]
            shared.append(f"-object memory-backend-memfd,id=nslabmem,size={self.memory},share=on -numa node,memdev=nslabmem")
        disks = [f"-drive if=none,id=nslabimg{n},file={image.path},format=raw,readonly=on -device virtio-blk-pci,drive=nslabimg{n},serial=nslabimg{n}"
                 for n, image in enumerate(self.images)]
        return " ".join([*shared, *disks, _ninep("nslabmodules", self.modules, readonly=True), _ninep("nslabout", self.out, readonly=False)])

    def _socket(self, tag: str) -> Path:
        assert self.sockets is not None
        return self.sockets / f"{tag}.sock"

    def launch(self, argv: list[str]) -> list[str]:
        """*argv* (vng) preceded by the virtiofs daemons, in one shell and so in one process group:
        the daemons go with the VM, whether it ends or is killed. Each daemon serves its directory
        from a read-only bind mount, so nothing in the guest can write to the host's files; vng starts
        once every socket is there (QEMU connects to them)."""
        if self.transport == "9p":
            return argv
        lines = ["set -e"]
        for tag, path in (("nslabsys", self.system / "usr"), ("nslabproject", self.project)):
            source = shlex.quote(str(path))
            lines.append(f"unshare --mount --propagation private -- sh -c 'mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && "
                         f"exec {VIRTIOFSD} --socket-path=\"$1\" -o source=\"$0\" -o cache=always -o sandbox=chroot -o log_level=err' "
                         f"{source} {shlex.quote(str(self._socket(tag)))} &")
        sockets = " ".join(shlex.quote(str(self._socket(tag))) for tag in ("nslabsys", "nslabproject"))
        # QEMU fails on a socket that is not there yet: wait for them (each daemon makes its own in milliseconds)
        lines.append(f"for s in {sockets}; do n=0; until [ -S \"$s\" ]; do n=$((n+1)); [ $n -lt 500 ] || {{ echo \"virtiofsd made no $s\"; exit 1; }}; sleep 0.01; done; done")
        lines.append('exec "$@"')
        return ["sh", "-c", "\n".join(lines), "sh", *argv]

    def mounts(self) -> list[str]:
        """The guest's commands that mount /usr's copy on /run/nslab-sys and the project at its own path."""
        q = shlex.quote(str(self.project))
        if self.transport == "9p":
            cached = f"ro,{NINEP},cache=loose"
            return [f"mount -t 9p -o {cached} nslabsys /run/nslab-sys", f"mount -t 9p -o {cached} nslabproject {q}"]
        return ["mount -t virtiofs -o ro nslabsys /run/nslab-sys", f"mount -t virtiofs -o ro nslabproject {q}"]

    @property
    def usr(self) -> str:
        """Where the guest finds the copy of /usr once mounted."""
        return "/run/nslab-sys/usr" if self.transport == "9p" else "/run/nslab-sys"


def exports(system: Path, project: Path, out: Path, modules: Path, sockets: Path, *, memory: str, transport: str | None = None,
            images: tuple[Image, ...] = ()) -> Exports:
    """The exports for one guest: virtiofs where Debian's virtiofsd is there and this is root (it needs both), else 9p."""
    if transport is None:
        transport = "virtiofs" if os.access(VIRTIOFSD, os.X_OK) and os.geteuid() == 0 else "9p"
    return Exports(system, project, out, modules, transport, sockets if transport == "virtiofs" else None, memory, images)


def _mount_images(images: tuple[Image, ...]) -> list[str]:
    """Each image on its directory, its disk found by the serial number QEMU gave it."""
    if not images:
        return []
    lines = ["modprobe erofs 2>/dev/null",
             'disk() { for d in /sys/block/vd*; do [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && echo "/dev/${d##*/}" && return 0; done; return 1; }']
    for n, image in enumerate(images):
        where = shlex.quote(image.mountpoint)
        lines.append(f"d=$(disk nslabimg{n}) && mount -t erofs -o ro \"$d\" {where} || echo 'nslab-matrix: no image on {image.mountpoint}, read over the root'")
    return lines


def _ninep(tag: str, path: Path, *, readonly: bool) -> str:
    return (f"-fsdev local,id={tag},path={path},security_model=none{',readonly=on' if readonly else ''},multidevs=remap "
            f"-device virtio-9p-pci,fsdev={tag},mount_tag={tag}")


def command() -> str:
    """The guest's whole command line: mount the report directory, run the script in it."""
    return f"mkdir -p {OUT} && mount -t 9p -o rw,{NINEP} nslabout {OUT} && exec sh {OUT}/{SCRIPT}"


def write_script(exports: Exports, body: str) -> None:
    """`guest.sh` in the report directory: the exports in place, then *body*, output to guest.log.

    The kernel package's modules (an export of their directory in the shared cache)
    are mounted on the guest's /usr/lib/modules. A failed mount is said in guest.log
    and the suite runs from the uncached root, slower but the same."""
    q = lambda path: shlex.quote(str(path))  # noqa: E731
    out = exports.out
    (out / SCRIPT).write_text("\n".join([
        "# written by nslab matrix: what the guest ran",
        f"exec >{OUT}/guest.log 2>&1",
        "mkdir -p /run/nslab-sys /run/nslab-usr/upper /run/nslab-usr/work",
        # /usr becomes an overlay on the cached copy, writable as virtme-ng's was
        f"if {' && '.join(exports.mounts())} \\",
        f"   && mount -t overlay nslab-usr -o lowerdir={exports.usr},upperdir=/run/nslab-usr/upper,workdir=/run/nslab-usr/work /usr \\",
        f"   && mkdir -p /usr/lib/modules && mount -t 9p -o ro,{NINEP},cache=loose nslabmodules /usr/lib/modules; then :",
        "else echo 'nslab-matrix: no cached root, running from the uncached one'; fi",
        *_mount_images(exports.images),
        f"mount --bind {OUT} {q(out)} || exit 1",
        f"echo 'nslab-matrix: /usr and the project over {exports.transport}'",
        body,
        "",
    ]))
