"""`nslab matrix KERNEL...`: the scenario suite once per kernel, one table.

    nslab matrix host 6.1 6.12 -k veth_two_namespaces
    nslab matrix 6.1,module_blacklist=bridge      # boot arguments after commas

`host` is the running kernel, natively. Any other name is a Debian kernel
package (`5.10`, `6.1`, `6.1-cloud`, `6.1-rt`, `6.12`, `newest`, or a full
`linux-image-...` name), or a Debian release (`trixie`) whose own kernel runs
in that release's own userland (nslab.matrix.userland). Kernels are found in
Debian's archive through nslab's private apt lists (nslab.matrix.archive; the
host's apt configuration is never changed), downloaded with `apt-get
download`, unpacked with `dpkg-deb -x` into the shared cache (nslab.matrix.cache; never
installed), and booted by virtme-ng in a throwaway QEMU guest that runs this
machine's root filesystem and venv, or the release's, read-only, with the
checkout mounted at its own path and the kernel's modules from the unpacked
tree (nslab.matrix.guest), so nothing outside the cache and reports/matrix/
changes on the host.

Every VM is bounded: it runs in its own process group and is killed by that
group's id when its time is up. Its processes carry the run's marker
(nslab.kernel.leftovers), so if this command itself is killed, `nslab clean` finds and
kills the orphaned QEMU. Acceleration: KVM is tried first with a short
bound, and QEMU's TCG is used when KVM does not boot within it (nested
virtualisation often fails one way or another).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from nslab.kernel import drops, leftovers, linux
from nslab.matrix import archive, cache, guest, userland, vmlinux
from nslab.matrix.kernels import Kernel, MatrixError, parse_kernel
from nslab.matrix.results import Run, compare_skips, differences, read_evidence, read_junit, table

ROOT = Path(__file__).resolve().parents[2]  # a checkout; for nslab installed from its wheel, the site directory holding it
# A checkout's editable install maps nslab.scenarios to ROOT/scenarios; a wheel installs it as ROOT/nslab/scenarios,
# with no project file around it: the guest runs it as `nslab test` does, with that command's settings.
INSTALLED = not (ROOT / "scenarios").is_dir()
UP = "nslab-matrix: guest up"
GUEST_MEMORY = "1G"
GUEST_TMP = "/run/nslab-tmp"
# Kernels boot one after another: a guest gets two vCPUs where this machine has two cores, and the
# suite as many xdist workers. The 6.1 column under TCG on 2 cores, nothing else running: 200.1 s and
# 282 CPU-s with two, 216.9 s and 224 CPU-s with one. (Under load 13 to 21, with a bpftrace per
# worker, which a TCG guest no longer starts, two took 1045 s against 571.)
GUEST_CPUS = min(2, len(os.sched_getaffinity(0)))


# -- processes ---------------------------------------------------------------
def bounded(argv: list[str], *, timeout: float, log: Path, env: dict | None = None, cwd: Path = ROOT) -> int | None:
    """Run *argv* in its own process group, output to *log*; None if killed at *timeout*.

    On timeout the whole group (vng, virtme-run, QEMU) is killed by its id and
    reaped, so nothing outlives the call.
    """
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env or _child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=functools.partial(linux.die_with_parent, os.getpid()))  # noqa: PLW1509 - one thread here
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, if anything
            except ProcessLookupError:
                pass
            proc.wait()
            _until_group_gone(proc.pid)


def _until_group_gone(pgid: int, bound: float = 5.0) -> None:
    """Return once no process of group *pgid* is left (a killed grandchild is not our
    child to reap: polled, with a deadline, until the kernel has it gone)."""
    deadline, pause = time.monotonic() + bound, 0.001
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _child_env() -> dict:
    """Our environment with the run's marker, so `nslab clean` can find orphans of a killed run."""
    env = dict(os.environ, **{AUTOLOAD_OFF: "1"})
    env[leftovers.MARKER] = os.environ.get(leftovers.MARKER) or leftovers.mark_this_run()
    return env


def boot(argv: list[str], *, timeout: float, log: Path) -> int | None:
    """`bounded` for vng: its temporary files (virtme_ret*, sockets) go to a scratch
    directory of this run, removed after, or by `nslab clean` if the run is killed."""
    scratch = leftovers.scratch_dir("vm")
    env = _child_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["TMPDIR"] = scratch
    try:
        return bounded(argv, timeout=timeout, log=log, env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# what booting a kernel takes beyond virtme-ng: a program, and the Debian package that has it
VM_PACKAGES = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static"}


def missing_vm_tools() -> str | None:
    """One sentence naming what a VM column lacks and how to install it, or None: said before
    anything is downloaded, instead of a column that fails after the download."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin:/sbin"
    packages = [package for program, package in VM_PACKAGES.items() if shutil.which(program, path=path) is None]
    needs = [f"apt-get install {' '.join(packages)}"] if packages else []
    if shutil.which("vng", path=path) is None:
        needs.append("pip install virtme-ng")
    return f"booting a kernel needs what is missing here: {'; '.join(needs)}" if needs else None


def vng_argv(image: Path, accel: str, command: str, *, rwdir: Path | None = None, append: tuple[str, ...] = (), cpus: int = GUEST_CPUS,
             qemu_opts: str | None = None, root: Path | None = None) -> list[str]:
    vng = shutil.which("vng", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if vng is None:
        raise MatrixError("virtme-ng is not installed: pip install virtme-ng (and apt-get install qemu-system-x86 busybox-static kmod)")
    # --force-9p: virtme-ng would try the Rust virtiofsd's options on Debian's C one, which refuses
    # them, and wait 3.1 s for it before falling back to 9p anyway
    argv = [vng, "--run", str(image), "--memory", GUEST_MEMORY, "--cpus", str(cpus), "--force-9p"]
    if accel == "tcg":
        argv.append("--disable-kvm")
    if rwdir is not None:
        argv.append(f"--rwdir={rwdir}")
    if qemu_opts:
        argv.append(f"--qemu-opts={qemu_opts}")
    if root is not None:
        argv += ["--root", str(root)]
    for arg in append:
        argv += ["--append", arg]
    return guest.without_boot_tmpfiles(argv + ["--exec", command], root or Path("/"))


# With a release's userland in the matrix, its iproute2 also runs `nslab show`'s printed commands
# (in every column, so that the columns compare like with like).
PRINTED_COMMANDS = ("tests/test_render.py::test_printed_ip_commands_build_a_lab_that_passes_its_checks",
                    "tests/test_render.py::test_lab_build_and_the_printed_commands_leave_the_same_kernel_state")

# A TCG guest boots without address-space randomisation. QEMU 7.2 keys a translated block by the
# virtual address of its code as well as the physical: with randomised mappings, every process the
# suite starts (1,174 execs in the scenario suite, 609 of them the CNI plugins' iptables) had its libraries'
# code translated anew. Alternated on 6.1 under TCG, `./run matrix 6.1` took 155.0 s and 208
# CPU-seconds with it against 193.3 s and 276 without (pytest in the guest 136.6 s against 178.2).
TCG_APPEND = ("norandmaps",)

_accel_cache: dict[str, tuple[str, str]] = {}
ACCEL_FILE = "matrix-accel.json"  # in the shared cache: a failed KVM probe, remembered for this host and QEMU
ACCEL_KEEP = 7 * 24 * 3600.0


def _host_key() -> str:
    """What a KVM verdict depends on: the host's kernel and the QEMU binary."""
    qemu = shutil.which("qemu-system-x86_64") or ""
    stat = os.stat(qemu) if qemu else None
    return f"{os.uname().release} {os.uname().version} {qemu} {stat.st_size if stat else 0} {stat.st_mtime_ns if stat else 0}"


def _remembered_accel() -> tuple[str, str] | None:
    try:
        saved = json.loads((cache.root() / ACCEL_FILE).read_text())
        if saved["key"] == _host_key() and time.time() - saved["when"] < ACCEL_KEEP:
            return "tcg", f"{saved['why']}; remembered from {time.strftime('%Y-%m-%d %H:%M', time.localtime(saved['when']))}, rm {cache.root() / ACCEL_FILE} to probe again"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def detect_accel(image: Path, workdir: Path, bound: float) -> tuple[str, str]:
    """('kvm' or 'tcg', why): KVM if a guest boots under it within *bound* seconds.

    A KVM guest that fails is remembered for a week (for this host kernel and
    QEMU), so every later run does not pay the probe (6 s here) again."""
    if "auto" in _accel_cache:
        return _accel_cache["auto"]
    remembered = _remembered_accel() if os.access("/dev/kvm", os.R_OK | os.W_OK) else None
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        found = ("tcg", "no usable /dev/kvm")
    elif remembered is not None:
        found = remembered
    else:
        log, said = workdir / "kvm-probe.log", workdir / "kvm-probe.guest"
        started = time.monotonic()
        # The guest writes into the shared directory: its stdout reaches us only
        # where it finds virtio-serial ports (udev makes their names), not always.
        status = boot(vng_argv(image, "kvm", f"echo {UP} > {shlex.quote(str(said))}", rwdir=workdir), timeout=bound, log=log)
        text = log.read_text(errors="replace")
        if status == 0 and UP in _read(said):
            found = ("kvm", f"booted under KVM in {time.monotonic() - started:.0f} s")
        elif status is None:
            found = ("tcg", f"KVM guest did not boot within {bound:.0f} s")
        else:
            found = ("tcg", f"KVM guest failed: {_last_line(text)[:100]}")
        if found[0] == "tcg":
            try:
                cache.root().mkdir(parents=True, exist_ok=True)
                (cache.root() / ACCEL_FILE).write_text(json.dumps({"key": _host_key(), "when": time.time(), "why": found[1]}) + "\n")
            except OSError:
                pass  # not remembered: the next run probes again
    _accel_cache["auto"] = found
    return found


# A matrix pytest loads the plugins it names and no other: with setuptools' entry points scanned
# (every installed distribution's metadata read) a guest's pytest took 1.5 s longer to start under TCG.
AUTOLOAD_OFF = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS = ("-p", "no:cacheprovider", "-p", "nslab.fixtures.plugin")


def pytest_args(outdir: Path, suite: list[str], select: str | None, workers: int = 1) -> list[str]:
    """The same pytest run on every kernel (its environment sets AUTOLOAD_OFF): in order, with
    nslab's plugin and none of those a kernel run does not use (randomly, hypothesis's, pytest-metadata's:
    under QEMU's TCG their imports alone cost ~15 s), nor pytest-html's report, whose lab diagrams (a
    `dot` per lab) cost 20 s there: the matrix page shows each kernel's evidence, and the ten slowest
    tests are listed. An installed nslab runs its scenario suite through `nslab test` (*suite* is then
    empty). *workers* > 1: that many xdist workers (a guest's, one per virtual CPU), which steal work
    from each other as `./run tests` does: a guest's tests differ in length more than the host's (a
    CNI test execs its plugins' iptables, 0.15 CPU-seconds each under TCG). Alternated on 6.1 under
    TCG, the column took 137.3 and 120.3 s with worksteal, 140.7 s with xdist's default (pytest 117.3
    and 105.7 s against 124.1)."""
    args = ["-P", "-m", "nslab.cli.main", "test"] if INSTALLED else ["-m", "pytest", *suite]
    args += ["-q", *PLUGINS, *(["-p", "xdist.plugin", "-n", str(workers), "--dist", "worksteal"] if workers > 1 else []), "--durations=10",
            f"--junitxml={outdir / 'junit.xml'}", f"--nslab-reports={outdir}"]
    return args + (["-k", select] if select else [])


def compile_for_guests(suite: list[str], select: str | None) -> None:
    """Write here the bytecode the guests would otherwise compile at every Python start.

    A guest reads this checkout read-only, with PYTHONDONTWRITEBYTECODE=1: a module whose .pyc
    is missing (a fresh clone; a shell with PYTHONDONTWRITEBYTECODE=1, whose host runs write
    none) is compiled again by every Python the guest starts, about 45 times slower under TCG
    than here. So the checkout's packages are compiled (py_compile writes whatever the
    environment says), and the suite is collected here once with bytecode on and the guest's
    plugins, which writes what pytest rewrites: the test modules, the conftests and the plugin
    named with -p. (Loaded by its entry point instead, the plugin would make pytest rewrite every
    nslab module as the guest imports it.) A second when nothing changed; a failure only costs
    the guest the compiling."""
    import compileall

    for package in ("nslab", "fixtures", *{path.split("::")[0] for path in suite}):
        path = ROOT / package
        if path.is_dir():
            compileall.compile_dir(path, quiet=2)
        elif path.suffix == ".py":
            compileall.compile_file(path, quiet=2)
    env = {k: v for k, v in _child_env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    with open(os.devnull, "wb") as null:
        subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *PLUGINS, *suite, *(["-k", select] if select else [])],
                       cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=null, stderr=null, timeout=300, check=False)


def run_kernel(kernel: Kernel, outdir: Path, *, suite: list[str], select: str | None, timeout: float,
               accel: str = "auto", kvm_bound: float = 30.0, cpus: int = GUEST_CPUS, run_install: bool = False) -> Run:
    """Run the suite on one kernel; its verdicts, or one line saying why there are none."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    run = Run(kernel)
    try:
        if kernel.name == "host":
            run.release, run.accel = os.uname().release, "native"
            run.userland = _this_machines_userland()
            started = time.monotonic()
            status = bounded([sys.executable, *pytest_args(outdir, suite, select)], timeout=timeout, log=outdir / "console.log")
            run.seconds = time.monotonic() - started
        else:
            status = _in_guest(run, outdir, suite=suite, select=select, timeout=timeout, accel=accel, kvm_bound=kvm_bound, cpus=cpus, run_install=run_install)
    except (MatrixError, archive.ArchiveError) as exc:
        run.problem = f"not run: {exc}"
        return run
    console = _read(outdir / "console.log") + _read(outdir / "guest.log")
    junit = outdir / "junit.xml"
    if junit.exists():
        run.cases = read_junit(junit)
    if (outdir / "summary.json").exists():
        run.evidence = read_evidence(outdir / "summary.json")
    if not run.cases:
        run.problem = _why_no_verdicts(kernel, status, console, timeout)
    return run


@functools.cache
def _this_machines_userland() -> str:
    """The versions of this machine's ip, nft, ping and of the Python that runs the suite (read once)."""
    return f"this machine's: {userland.versions(Path('/'), platform.python_version())}"


def _in_guest(run: Run, outdir: Path, *, suite: list[str], select: str | None, timeout: float, accel: str, kvm_bound: float, cpus: int,
              run_install: bool) -> int | None:
    """Boot *run*'s kernel (in its release's userland, or this machine's) and run the suite
    in it; the guest's exit status, None if it was killed at *timeout*. `run.seconds` counts
    the boot and the suite (and *run_install*'s `./run install` in a release's userland), not
    the download or a userland's build."""
    kernel, workdir = run.kernel, ROOT
    if kernel.userland:  # the release's root filesystem (refused before any download if its Python is too old), this checkout in it
        system, python = userland.prepare(kernel.userland), "/usr/bin/python3"
        if run_install:
            install, workdir, python = userland.run_install(system, kernel.userland, outdir)
        else:
            install = userland.install_project(system) + "\n"
        (system / outdir.relative_to("/")).mkdir(parents=True, exist_ok=True)
        run.userland = f"{kernel.userland}'s{' (./run install)' if run_install else ''}: {userland.versions(system)}"
    else:
        system, python, install = Path("/"), sys.executable, ""
        run.userland = _this_machines_userland()
    # this machine's interpreter outside /usr (pyenv's): its standard library from the cached copy too
    binds = guest.outside_usr(Path(sys.base_prefix).resolve(), ROOT) if system == Path("/") else ()
    package = archive.package_for(kernel.name)
    image = archive.fetch(package)
    kernel_file = vmlinux.bootable(image)  # its uncompressed ELF: no decompression in the guest
    run.release = package.removeprefix("linux-image-")
    why = "forced"
    if accel == "auto":
        accel, why = detect_accel(kernel_file, outdir, kvm_bound)
    run.accel = f"{accel} ({why})"
    # Everything the guest says goes to guest.log in the shared directory (its stdout reaches
    # the host only where udev names virtio-serial ports). LC_ALL=C spares every command it
    # runs the locale files (3,000 opens a suite, each a round trip to QEMU). Its TMPDIR is a
    # private, empty directory on the guest's tmpfs: /tmp is an overlay of the host's (whose
    # other runs' scratch directories would look dead to a sweep in the guest), and on Debian's
    # 5.10 pytest's capture could not read back its unlinked temporary file from the shared 9p
    # directory (ENOENT).
    # Under TCG bpftrace compiles emulated: it did not attach within the 20 s a probe waits for it
    # (nslab/diagnosis/watch.py), so a TCG guest goes without drop reasons from the start.
    reasons = f"{drops.OFF_VARIABLE}=off " if accel == "tcg" else ""
    guest.write_script(ROOT, outdir, f"echo {UP} $(uname -r), boot protocol $(cat /sys/kernel/boot_params/version), randomize_va_space $(cat /proc/sys/kernel/randomize_va_space), "
                       f"systemd-tmpfiles {guest.TMPFILES_STATE}\n{install}mkdir -p {GUEST_TMP} && cd {shlex.quote(str(workdir))} && "
                       f"LC_ALL=C PYTHONDONTWRITEBYTECODE=1 {AUTOLOAD_OFF}=1 TMPDIR={GUEST_TMP} {reasons}" + shlex.join([python, *pytest_args(outdir, suite, select, cpus)]),
                       binds=binds)
    argv = vng_argv(kernel_file, accel, guest.command(), append=kernel.append + (TCG_APPEND if accel == "tcg" else ()), cpus=cpus,
                    qemu_opts=guest.qemu_options(system, ROOT, archive.modules_dir(image), outdir), root=None if system == Path("/") else system)
    started = time.monotonic()
    # the kernel and the userland are in use: `nslab cache clean` leaves them alone until the VM is gone
    with cache.lock(image.parents[1], shared=True), cache.lock(system, shared=True) if kernel.userland else contextlib.nullcontext():
        try:
            return boot(argv, timeout=timeout, log=outdir / "console.log")
        finally:
            run.seconds = time.monotonic() - started


def _why_no_verdicts(kernel: Kernel, status: int | None, console: str, timeout: float) -> str:
    if kernel.name != "host" and UP not in console:
        if status is None:
            return f"did not boot: no sign of life within {timeout:.0f} s (killed); last console line: {_last_line(console)}"
        return f"did not boot: {_last_line(console)}"
    if status is None:
        return f"timed out after {timeout:.0f} s (killed) before pytest wrote its report; last line: {_last_line(console)}"
    return f"no test report (exit {status}): {_last_line(console)}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def add_arguments(parser) -> None:
    parser.add_argument("kernels", nargs="*", metavar="KERNEL",
                        help="host; a Debian kernel: 5.10, 6.1, 6.1-cloud, 6.1-rt, 6.12, newest, linux-image-...; or a Debian release's userland on its own kernel: "
                             "bullseye, bookworm, trixie, sid; boot arguments after commas (6.1,module_blacklist=bridge)")
    parser.add_argument("--list", action="store_true", help="what each kernel and release name resolves to in Debian's archive, and what is cached")
    parser.add_argument("-k", dest="select", metavar="EXPR", help="only tests matching this pytest -k expression")
    parser.add_argument("--suite", action="append", metavar="PATH",
                        help="test paths to run, relative to the project (default: scenarios; with a userland column also the tests that run nslab show's printed ip commands)")
    parser.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS", help="per kernel: boot and suite (default: 1800)")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="QEMU acceleration (default: auto: KVM if it boots within --kvm-bound, else TCG)")
    parser.add_argument("--cpus", type=int, default=GUEST_CPUS, metavar="N", help=f"virtual CPUs per guest, and as many xdist workers in it (default: {GUEST_CPUS})")
    parser.add_argument("--run-install", action="store_true",
                        help="a release's userland is provisioned as the Vagrantfile provisions a box: ./run install in a copy of this checkout, "
                             "offline from .venv/wheels (the release's Python must be the venv's: bookworm), and the suite runs with the venv it made")
    parser.add_argument("--kvm-bound", type=float, default=30.0, metavar="SECONDS", help="how long a KVM guest may take to boot before TCG is used (default: 30)")
    parser.add_argument("--reports", default=str(ROOT / "reports" / "matrix"), metavar="DIR", help="where each kernel's junit.xml, pcaps and the matrix page go")


def run(args) -> int:
    from nslab.matrix import page as matrix_page

    if args.list:
        from nslab.matrix import available
        try:
            print("\n".join(available.lines()))
        except archive.ArchiveError as exc:
            print(f"nslab matrix: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        if not args.kernels:
            raise MatrixError("name at least one KERNEL (host, 6.1, trixie, ...), or --list to see what can be had")
        kernels = [parse_kernel(k) for k in args.kernels]
        if args.timeout <= 0 or args.kvm_bound <= 0:
            raise MatrixError("--timeout and --kvm-bound: must be a positive number of seconds")
        if not 1 <= args.cpus <= 64:
            raise MatrixError(f"--cpus {args.cpus}: must be between 1 and 64")
        if INSTALLED and (args.suite or any(k.userland for k in kernels)):
            raise MatrixError("an installed nslab runs its own scenario suite on kernels (-k chooses tests); --suite and a release's userland "
                              "(bookworm, trixie, ...) need a checkout: ./run matrix there")
        if INSTALLED:
            suite: list[str] = []
        else:
            suite = args.suite or (["scenarios", *PRINTED_COMMANDS] if any(k.userland for k in kernels) else ["scenarios"])
        for path in suite:
            if not (ROOT / path.split("::")[0]).exists():
                raise MatrixError(f"--suite {path!r}: no such path under {ROOT}")
        if args.run_install and not any(k.userland for k in kernels):
            raise MatrixError("--run-install: provisions a release's userland (bookworm); name one")
        for kernel in kernels if args.run_install else ():
            if kernel.userland:
                userland.offline_wheels(kernel.userland)
        if any(k.name != "host" for k in kernels) and missing_vm_tools():
            raise MatrixError(missing_vm_tools())
    except (MatrixError, archive.ArchiveError) as exc:  # an ArchiveError: the lists --run-install reads a release's Python from
        print(f"nslab matrix: {exc}", file=sys.stderr)
        return 2
    reports = Path(args.reports).resolve()
    leftovers.mark_this_run()  # what this run starts carries its id, not a parent's
    # SIGTERM unwinds like Ctrl-C, so the running VM's process group is killed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not INSTALLED and any(k.name != "host" and not k.userland for k in kernels):
        compile_for_guests(suite, args.select)  # for the guests that run this machine's Python
    runs = []
    for kernel in kernels:
        print(f"nslab matrix: {kernel.label} ...", file=sys.stderr, flush=True)
        one = run_kernel(kernel, reports / kernel.slug, suite=suite, select=args.select, timeout=args.timeout,
                         accel=args.accel, kvm_bound=args.kvm_bound, cpus=args.cpus, run_install=args.run_install)
        print(f"nslab matrix: {kernel.label}: {one.counts()} ({one.seconds:.1f} s, {one.accel or '-'})", file=sys.stderr, flush=True)
        runs.append(one)
    compare_skips(runs)
    print(table(runs))
    page = matrix_page.write(runs, differences(runs), reports / "index.html")
    print(f"\nmatrix page: {page}")
    return 0 if all(r.ok for r in runs) else 1
