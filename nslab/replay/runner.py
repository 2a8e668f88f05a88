"""Replay a tutorial: each command in the stage, bounded, checked, explained.

    done = replay(commands(text), Options(timeout=10))
    print(done.summary_line())

Per command: its exit status and output tail; for `ping`, `curl`, `wget` and
`nc` nslab's verdict, cause and explanation (on a copy of the stage, decided
early); servers start in the background; `ip netns exec NS bash` enters NS
for the commands after it, `exit` leaves; the output a tutorial shows is
compared with the printed one. Findings (nslab/replay/findings.py): a typo,
a hang, an outcome other than the one the tutorial expects, an unexpected
failure, a difference from the shown output.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field, replace

from nslab.advice.fixes import fix_line
from nslab.kernel import listeners
from nslab.replay import compare, kinds
from nslab.replay.findings import cascade, findings, networks_in
from nslab.replay.given import learned, prepare, substitute, uses_stand_ins
from nslab.replay.stage import ENV, Ran, Stage
from nslab.replay.tutorial import Command

INSTALLABLE = {  # tools tutorials use -> how to get them on Debian
    "nc": "apt-get install netcat-openbsd", "ncat": "apt-get install ncat", "netcat": "apt-get install netcat-openbsd",
    "socat": "apt-get install socat", "tcpdump": "apt-get install tcpdump", "iperf3": "apt-get install iperf3",
    "ifconfig": "apt-get install net-tools", "route": "apt-get install net-tools", "arp": "apt-get install net-tools",
    "netstat": "apt-get install net-tools", "brctl": "apt-get install bridge-utils", "traceroute": "apt-get install traceroute",
    "arping": "apt-get install iputils-arping", "ethtool": "apt-get install ethtool", "curl": "apt-get install curl",
    "wget": "apt-get install wget", "nft": "apt-get install nftables", "iptables": "apt-get install iptables",
    "python3": "apt-get install python3", "busybox": "apt-get install busybox",
}  # fmt: skip


@dataclass(frozen=True)
class Options:
    timeout: float = 10.0  # s a command may run before it counts as a hang
    interrupt: float = 2.0  # s before Ctrl-C for a command that runs until interrupted
    server_wait: float = 2.0  # s for a server to listen
    fixes: bool = False  # verified fixes for failed reachability commands
    tail: int = 3  # lines of output shown per command
    draft: bool = False  # read the final state and probe again for a draft exercise (nslab/replay/draft.py)


@dataclass
class Step:
    n: int
    line: int
    command: str
    expect: str | None
    kind: str = "run"  # 'run', 'reach', 'server', 'shell', 'skipped'
    ran: str | None = None  # what ran in the stage (with the entered shell's namespace)
    status: int | None = None
    elapsed: float = 0.0
    output: list[str] = field(default_factory=list)  # the tail
    note: str | None = None
    interrupted: bool = False
    hung: bool = False
    ok: bool | None = None
    verdict: dict | None = None
    fixes: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)  # {"kind": 'typo'|'hang'|'mismatch'|'failed', "text": ...}
    raw: str = field(default="", repr=False)  # the whole output, for the findings (not in JSON)


@dataclass
class Replay:
    tutorial: str
    steps: list[Step]
    given: dict | None = None
    made: list[str] = field(default_factory=list)  # what the stage had before the first command (stand-ins, containers)
    final: dict = field(default_factory=dict)  # with Options.draft: the stage's namespaces as `ip -j` read them at the end
    probes: list = field(default_factory=list)  # with Options.draft: the tutorial's pings as the final state answers them

    def counts(self) -> dict:
        findings: dict[str, int] = {}
        for s in self.steps:
            for f in s.findings:
                findings[f["kind"]] = findings.get(f["kind"], 0) + 1
        ran = [s for s in self.steps if s.kind != "skipped"]
        return {
            "commands": len(self.steps),
            "ok": sum(s.ok is True for s in ran),
            "failed": sum(s.ok is False for s in ran),
            "failed_as_expected": sum(s.ok is False and s.expect == "fail" and not s.findings for s in ran),
            "skipped": len(self.steps) - len(ran),
            "verdicts": sum(s.verdict is not None for s in self.steps),
            "findings": findings,
        }

    @property
    def clean(self) -> bool:
        return not any(s.findings for s in self.steps)

    def summary_line(self) -> str:
        c = self.counts()
        found = ", ".join(f"{n} {_plural(kind, n)}" for kind, n in sorted(c["findings"].items())) or "none"
        return (
            f"replay {self.tutorial}: {c['commands']} commands, {c['ok']} ok, {c['failed']} failed ({c['failed_as_expected']} as expected), {c['skipped']} skipped, "
            f"{c['verdicts']} nslab verdicts; findings: {found}"
        )

    def to_dict(self) -> dict:
        steps = [{k: v for k, v in asdict(s).items() if k != "raw"} for s in self.steps]
        return {"tutorial": self.tutorial, "given": self.given, "made": self.made, "summary": self.counts(), "clean": self.clean, "steps": steps}


def _plural(kind: str, n: int) -> str:
    word = {"typo": "typo", "hang": "hang", "mismatch": "expectation mismatch", "failed": "unexpected failure", "output": "output difference"}.get(kind, kind)
    return word if n == 1 else word + ("es" if word.endswith("ch") else "s")


def replay(commands: list[Command], options: Options, *, tutorial: str = "tutorial", given: str | None = None, on_step=None) -> Replay:
    """Run *commands* in a fresh stage (after *given*), one Step each; *on_step* sees each as it ends."""
    done = Replay(tutorial, [])
    with Stage() as stage:
        if given is not None:
            ran = stage.run('set -e; eval "$(cat)"', timeout=options.timeout, stdin=given.encode())
            done.given = {"status": ran.status, "output": _tail(ran.output, options.tail), "hung": ran.hung}
            if ran.status != 0:
                return done
        done.made = prepare(stage, commands, max(options.timeout, 120.0))  # bounded work of nslab's own, however loaded the machine
        play = _Play(compare.known_names([c.text for c in commands]), networks(commands))
        cleanup = _cleanup_start(commands)
        for n, cmd in enumerate(commands, 1):
            if options.draft and n - 1 == cleanup:
                done.final, done.probes = _final(stage, play)  # what the tutorial built, before it cleans up
            step = _step(stage, n, replace(cmd, text=substitute(cmd.text, play.values)), play, options)
            done.steps.append(step)
            if on_step is not None:
                on_step(step)
        if options.draft and cleanup == len(commands):
            done.final, done.probes = _final(stage, play)
    return done


def _cleanup_start(commands: list[Command]) -> int:
    """Where the tutorial's closing clean-up (`ip netns del ...`, `ip link del ...` to the end) starts."""
    n = len(commands)
    while n and re.match(r"^ip\s+(?:-n\s+\S+\s+)?(?:netns|link)\s+del", commands[n - 1].text):
        n -= 1
    return n


def _final(stage: Stage, play: _Play) -> tuple[dict, list]:
    """The stage's last state, and each ping of the tutorial probed again in it."""
    from nslab.replay.draft import Probe, final_state
    from nslab.replay.verdict import verdict

    probes = []
    for src, dst in dict.fromkeys(play.probes):
        found = verdict(stage, src, dst, None)
        if found.verdict is not None:
            probes.append(Probe(src, dst, found.verdict["ok"], found.verdict["cause"]))
    return final_state(stage), probes


@dataclass
class _Play:
    """What the replay carries from step to step."""

    known: set[str]  # the names and addresses the tutorial's commands use
    lab: list  # the IPv4 networks the tutorial builds (a probe elsewhere is not sent)
    shell: str | None = None  # the namespace whose shell was entered
    values: dict[str, str] = field(default_factory=dict)  # a value shown -> the one the stage printed
    broken: list[tuple[int, str]] = field(default_factory=list)  # (line, command) of steps with findings
    probes: list[tuple[str, str]] = field(default_factory=list)  # (from, to) of the tutorial's probes


def _step(stage: Stage, n: int, cmd: Command, play: _Play, options: Options) -> Step:
    step = Step(n, cmd.line, cmd.text, cmd.expect)
    reason = kinds.skip_reason(cmd.text) or _not_installed(cmd.text) or _outside(cmd, play)
    if reason is not None:
        step.kind, step.note = "skipped", reason
        return step
    if kinds.is_exit(cmd.text):
        step.kind, step.ok = "shell", True
        step.note = f"leaves {play.shell}'s shell" if play.shell else "no shell was entered: nothing to leave"
        play.shell = None
        return step
    entered = kinds.entered_shell(cmd.text)
    if entered is not None and entered in stage.namespaces():
        play.shell = entered
        step.kind, step.ok, step.note = "shell", True, f"enters {entered}'s shell: the next commands run in {entered} (until exit)"
        return step
    tgt = kinds.target(cmd.text, play.shell)
    if tgt is not None and tgt.dst is not None and not cmd.container:
        play.probes.append((tgt.ns or "host", tgt.dst))
    if cmd.expect is None and cmd.said and tgt is not None:
        step.expect, step.note = "fail", f"expected to fail: the tutorial says {cmd.said!r}"
    if cmd.container:
        step.ran = f"docker exec {cmd.container} bash -c {shlex.quote(cmd.text)}"
    elif play.shell is not None:
        step.ran = f"ip netns exec {play.shell} bash -c {shlex.quote(cmd.text)}"
    port = kinds.server_port(cmd.text)
    if port is not None:
        _serve(stage, step, port, options)
    else:
        _run(stage, step, tgt if not cmd.container else None, options)
    step.findings = findings(stage, step, play.shell, options)
    _shown(step, cmd, play)
    cascade(step, play.broken)
    return step


def networks(found: list[Command]) -> list:
    """The IPv4 networks a tutorial builds: its addresses' prefixes, loopback, and Docker's and kind's when it uses them."""
    nets = [ipaddress.ip_network("127.0.0.0/8")]
    for c in found:
        nets += networks_in(c.text)
    if uses_stand_ins(found):
        nets += [ipaddress.ip_network(n) for n in ("172.17.0.0/16", "172.18.0.0/16", "10.244.0.0/16")]
    return nets


def _outside(cmd: Command, play: _Play) -> str | None:
    """A probe of an internet address outside every network the tutorial builds is not sent: the stage has no way out."""
    tgt = kinds.target(cmd.text, None)
    if tgt is None or tgt.dst is None or not ipaddress.ip_address(tgt.dst).is_global or any(ipaddress.ip_address(tgt.dst) in net for net in play.lab):
        return None
    return f"{tgt.dst} is outside every network the tutorial builds (on its machine, the internet): the sandbox has no way out, so nothing is sent"


def _shown(step: Step, cmd: Command, play: _Play) -> None:
    """Compare the output the tutorial shows with what the command printed; learn a value it shows (a PID)."""
    if not cmd.shown or step.ok is not True:
        return
    value = learned(cmd, step.raw)
    if value is not None:
        play.values[value[0]] = value[1]
        step.note = f"prints {value[1]} where the tutorial shows {value[0]}: the commands after it use {value[1]}"
        return
    kind = compare.comparable(cmd.text)
    if kind is not None:
        for text in compare.differences(kind, cmd.shown, step.raw, play.known):
            step.findings.append({"kind": "output", "text": text})


def _not_installed(text: str) -> str | None:
    """A tool the tutorial needs that this machine lacks (a misspelt one is left to run: a typo)."""
    name = kinds.tool(text)
    if name in INSTALLABLE and shutil.which(name, path=ENV["PATH"]) is None:
        return f"{name} is not installed on this machine ({INSTALLABLE[name]})"
    return None


def _run(stage: Stage, step: Step, tgt: kinds.Target | None, options: Options) -> None:
    if tgt is not None:
        step.kind = "reach"
        _verdict(stage, step, tgt, options)
    interrupt = options.interrupt if kinds.until_interrupted(step.command) else None
    ran = stage.run(step.ran or step.command, timeout=options.timeout, interrupt=interrupt)
    _record(step, ran, options)
    if ran.interrupted:
        tool = kinds.netns_prefix(kinds.words(step.command))[1][:1]
        step.ok = ran.status == 0 if tool == ["ping"] else (step.verdict["ok"] if step.verdict else True)
    else:
        step.ok = ran.status == 0


def _verdict(stage: Stage, step: Step, tgt: kinds.Target, options: Options) -> None:
    if tgt.dst is None:
        step.note = f"no nslab verdict: {tgt.name!r} is a name, and the sandbox has no DNS; use an address"
        return
    from nslab.replay.verdict import verdict

    found = verdict(stage, tgt.ns or "host", tgt.dst, tgt.port, fixes=options.fixes)
    if found.verdict is None:
        step.note = f"no nslab verdict: {found.note}"
        return
    step.verdict = found.verdict
    step.fixes = [fix_line(f.changes, {"host": ""}) for f in found.fixes]
    if options.fixes and not found.verdict["ok"] and not found.fixes and found.note:
        step.note = f"fixes: {found.note}"


def _serve(stage: Stage, step: Step, port: int | bool, options: Options) -> None:
    from nslab.kernel.process import wait_until

    step.kind = "server"
    start = time.monotonic()
    proc = stage.start(re.sub(r"(?<!&)&\s*$", "", step.ran or step.command))  # started in the background already: `cmd &` too
    if port is True:
        step.ok, step.note = proc.poll() is None, "started in the background"
        return
    try:
        wait_until(lambda: proc.poll() is not None or _listening(proc.pid, port), options.server_wait, f"listening on {port}")
    except TimeoutError:
        pass
    step.elapsed = time.monotonic() - start
    if proc.poll() is not None:
        out = (proc.stdout.read() or b"").decode(errors="replace") if proc.stdout else ""
        step.status, step.ok, step.output = proc.returncode, False, _tail(out, options.tail)
        step.note = "the server exited at once"
    elif _listening(proc.pid, port):
        step.ok, step.note = True, f"started in the background, listening on TCP {port}"
    else:
        step.ok, step.note = True, f"started in the background, not yet listening on TCP {port} after {options.server_wait:g} s"


def _listening(pid: int, port: int) -> bool:
    """Does a process of *pid*'s tree listen on TCP *port* (in its own network namespace)? Asked
    in each namespace once (listeners.listening); through /proc/PID/net where nslab cannot enter it."""
    from nslab.replay.stage import _descendants

    asked = set()
    for p in [pid, *_descendants(pid)]:
        try:
            fd = os.open(f"/proc/{p}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # gone meanwhile
        try:
            inode = os.fstat(fd).st_ino
            if inode in asked:
                continue
            asked.add(inode)
            if listeners.listening(fd, port):
                return True
        except PermissionError:
            if any(_listed(f"/proc/{p}/net/{table}", port) for table in ("tcp", "tcp6")):
                return True
        finally:
            os.close(fd)
    return False


def _listed(path: str, port: int) -> bool:
    try:
        with open(path) as f:
            return listeners.listens_in(f.read(), port)
    except OSError:
        return False


def _record(step: Step, ran: Ran, options: Options) -> None:
    step.status, step.elapsed, step.interrupted, step.hung = ran.status, ran.elapsed, ran.interrupted, ran.hung
    step.output, step.raw = _tail(ran.output, options.tail), ran.output


def _tail(text: str, n: int) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return [line[:200] for line in lines[-n:]] if n else []
