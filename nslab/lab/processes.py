"""Processes inside a lab namespace: `ip netns exec NS ...`, in the foreground or
as servers that the lab stops (by PID) when it closes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # nslab.kernel.process (and subprocess) load with the first process
    import subprocess

    from nslab.kernel.process import Process
    from nslab.lab.netns import Netns


class CommandFailed(RuntimeError):
    """A command run with `check=True` exited non-zero; the message names the
    namespace, the command and what it wrote to stderr. Like subprocess's
    CalledProcessError it keeps `returncode`, `cmd`, `stdout` and `stderr`."""

    def __init__(self, ns: str, done: subprocess.CompletedProcess[bytes]):
        self.ns = ns
        self.returncode: int = done.returncode
        self.cmd: Any = done.args
        self.stdout, self.stderr = done.stdout, done.stderr
        super().__init__(self.ns, self.returncode)

    def __str__(self) -> str:
        err = self.stderr.decode(errors="replace") if isinstance(self.stderr, bytes) else (self.stderr or "")
        said = err.strip().splitlines()[-1] if err.strip() else "nothing on stderr"
        return f"ip netns exec {self.ns} {_words(self.cmd)}: exit status {self.returncode}: {said}"


def _words(argv: Iterable[object]) -> str:
    """The command as a shell would take it (without the setpriv wrapper nslab adds)."""
    import shlex

    words = [str(a) for a in argv]
    if "--" in words:
        words = words[words.index("--") + 1 :]
    return shlex.join(words)


class Processes:
    """A namespace's processes (`ns.processes`, and the flat `ns.run()`, ...): run, spawn and serve.
    The lab stops those spawned when it closes."""

    def __init__(self, ns: Netns):
        self.ns = ns

    def spawn(self, argv: Iterable[str], env: dict[str, str] | None = None) -> Process:
        """`ip netns exec NS ARGV...` in the background; stopped by PID when the lab closes."""
        from nslab.kernel.process import spawn

        return self.ns.lab.track(spawn(self.ns.handle.fd, self.ns.name, list(argv), env=env))

    def serve(self, argv: Iterable[str], port: int, *, timeout: float = 60.0) -> Process:
        """Start a server here and return once it listens on TCP *port* (read back
        from the kernel's socket table, not assumed); fails with its output if it dies."""
        __tracebackhide__ = True
        from nslab.kernel.process import wait_until

        proc = self.spawn(argv)
        wait_until(lambda: self.ns.readback.listening(port) or not proc.running(), timeout, f"{' '.join(proc.argv)} listening on {port} in {self.ns.name}")
        if not proc.running():
            proc.stop()
            raise RuntimeError(f"{' '.join(proc.argv)} exited in {self.ns.name} before listening on {port}: {proc.output().strip()[-500:]}")
        return proc

    def run(
        self,
        argv: Iterable[str],
        *,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """`ip netns exec NS ARGV...` in the foreground: waits (bounded), returns its
        output (bytes). With `check=True` a non-zero exit raises CommandFailed,
        which names the command and quotes its stderr."""
        __tracebackhide__ = True
        from nslab.kernel.process import run as run_in_netns

        done = run_in_netns(self.ns.handle.fd, list(argv), input=input, env=env, timeout=timeout)
        if check and done.returncode != 0:
            raise CommandFailed(self.ns.name, done)
        return done
