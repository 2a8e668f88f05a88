"""A tutorial's shell commands, in order, with the line each came from.

Commands come from fenced `sh`/`bash`/`shell`/`console` blocks (Markdown
fences or Jekyll `{% highlight bash %}`), from a fenced span that starts a
line (```ip link```), and, in plain text copied from a web page, from lines
that start with a prompt (`$ `, `# `, `user@host:~$ `) or with a command
learners type (`ip`, `ping`, `curl`, ...). Prompts and `sudo` are stripped;
a trailing backslash joins lines; a trailing `# expect: fail` or
`# expect: ok` is the author's expected outcome.

What a tutorial shows as a command's output is kept with it (`shown`), never
run: in a block with prompts the lines without one (unless the block marks its
output `#=> ...`, then those), in a block without prompts `#=>` lines, lines
that are not commands (an indented `link/ether ...`, a `CNI_COMMAND` table)
and comments that read like `ip` output, and a Hugo `{{< output >}}` block
after the command's block. Commands in sentences come from nslab/replay/prose.py.
A prompt whose host is a container's (`root@dcb084af2fbb:/# `) runs the
command in that container.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace

from nslab.replay import grammar, prose

SHELLS = {"sh", "bash", "shell", "console", "zsh", "shell-session", "shellsession", "terminal", ""}
LEADING = {
    "ip", "ping", "curl", "wget", "nc", "ncat", "netcat", "sysctl", "iptables", "ip6tables", "iptables-save", "nft",
    "bridge", "brctl", "ethtool", "unshare", "nsenter", "tcpdump", "arp", "arping", "ifconfig", "route", "ss",
    "netstat", "traceroute", "tracepath", "modprobe", "echo", "docker", "kubectl", "kind", "systemctl", "python3",
    "socat", "ln", "mkdir", "sudo", "cat",
}  # fmt: skip
PROMPT = re.compile(r"^(?:\[[^\]\s]+@[^\]]+\][#$]|[\w.-]+@[\w.-]+(?::[^\s#$]*)?\s?[#$]|[#$])\s+(?=\S)")
EXPECT = re.compile(r"\s+#\s*expect:\s*(ok|fail)\s*$", re.IGNORECASE)
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)\s*$")
JEKYLL_OPEN = re.compile(r"^\s*\{%\s*highlight\s+([\w+-]+)[^%]*%\}\s*$")
JEKYLL_CLOSE = re.compile(r"^\s*\{%\s*endhighlight\s*%\}\s*$")
SHORTCODE = re.compile(r"^\s*\{\{<\s*(\w+)[^>]*>\}\}\s*$")  # Hugo: {{< output >}} ... {{< /output >}}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
SETS = re.compile(r"^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=(?:\$\(|\S)")  # `contid=$(docker run ...)` in a block
BUILTINS = {"cd", "export", "for", "if", "while", "source", ".", "exit", "logout", "set", "unset", "read", "true", "false", "exec"}
SHOWN = re.compile(r"^\s*#\s?=>\s?(.*)$")  # `#=> output`, as some blogs mark it
IP_OUTPUT = re.compile(r"^\s*#?\s*\d+:\s+[\w.@-]+:?\s")  # `# 16: eth1: <...>`: a comment holding ip's output
CONTAINER_HOST = re.compile(r"^[\w.-]+@([0-9a-f]{12}):")  # Docker names a container's host after its ID
INLINE = re.compile(r"^\s*```([^`]+)```")


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line of the tutorial where it starts
    text: str  # as the shell will run it (prompt and sudo stripped)
    expect: str | None = None  # 'ok', 'fail', or None (the author said nothing)
    source: str = "fenced"  # 'fenced', 'inline', 'prompt', 'plain' or 'prose'
    shown: tuple[str, ...] = ()  # the output the tutorial shows for it
    container: str | None = None  # the container whose prompt it was typed at
    said: str | None = None  # the tutorial's words about its outcome ("still unsuccessful"), if they say it fails


def commands(text: str) -> list[Command]:
    """Every command of the tutorial *text*, in order, each with the output shown for it."""
    out: list[Command] = []
    lines = text.splitlines()
    i, last_block = 0, -2  # the closing line of the last shell block that gave a command
    while i < len(lines):
        lang = _opening(lines[i])
        if lang is not None:
            end = _closing(lines, i)
            if lang.lower() in SHELLS:
                found = _block(lines, i + 1, end)
                out += found
                last_block = end if found else last_block
            elif lang == "hugo:output" and out and _only_blank(lines, last_block + 1, i):
                out[-1] = replace(out[-1], shown=out[-1].shown + tuple(lines[i + 1 : end]))
            i = end + 1
            continue
        i = _plain(lines, i, out)
    return prose.expectations(out, lines)


def _only_blank(lines: list[str], start: int, end: int) -> bool:
    return start <= end and all(not lines[j].strip() for j in range(start, end))


def _opening(line: str) -> str | None:
    """The language of a block that opens on *line* ('' for a bare fence), else None."""
    m = FENCE.match(line)
    if m:
        return m.group(2)
    m = JEKYLL_OPEN.match(line)
    if m:
        return m.group(1)
    m = SHORTCODE.match(line)
    return f"hugo:{m.group(1)}" if m else None


def _closing(lines: list[str], start: int) -> int:
    fence, hugo = FENCE.match(lines[start]), SHORTCODE.match(lines[start])
    for j in range(start + 1, len(lines)):
        if fence and lines[j].strip().startswith(fence.group(1)[:3]) and FENCE.match(lines[j]):
            return j
        if hugo and re.match(r"^\s*\{\{<\s*/" + hugo.group(1) + r"\s*>\}\}\s*$", lines[j]):
            return j
        if not fence and not hugo and JEKYLL_CLOSE.match(lines[j]):
            return j
    return start if hugo else len(lines)  # a shortcode without its closing tag is one line


def _block(lines: list[str], start: int, end: int) -> list[Command]:
    """A shell block: its commands, each with the output lines that follow it."""
    body = range(start, end)
    marked = any(SHOWN.match(lines[j]) for j in body)  # `#=>` marks the output: every other line is a command
    prompted = not marked and any(_prompt_command(lines[j]) is not None for j in body)
    out: list[Command] = []
    j = start
    while j < end:
        raw = lines[j]
        shown = SHOWN.match(raw)
        cmd = _prompt_command(raw) if prompted else _block_command(raw)
        if cmd is None:
            if out and (shown or prompted or IP_OUTPUT.match(raw) or not _comment_or_blank(raw)):
                out[-1] = replace(out[-1], shown=out[-1].shown + ((shown.group(1) if shown else raw),))
            j += 1
            continue
        first = j
        cmd, j = _continued(lines, j, end, cmd)
        made = _command(first, cmd, "fenced")
        if made is not None:
            host = CONTAINER_HOST.match(raw.strip())
            out.append(replace(made, container=host.group(1)) if host else made)
    return out


def _block_command(raw: str) -> str | None:
    """A line of a block without prompts as a command, or None (a comment, output, a table's entry)."""
    if _comment_or_blank(raw):
        return None
    prompt = _prompt_command(raw)
    text = prompt if prompt is not None else raw.strip()
    return text if is_command(text) else None


def is_command(text: str) -> bool:
    """Does *text* start with something a shell runs (a command this machine or tutorials know, an assignment)?"""
    words = strip_sudo(text).split()
    if not words:
        return False
    first = words[0]
    if first in LEADING or first in BUILTINS or SETS.match(text) or first.startswith("./"):
        return True
    if first[:1].isupper() or "/" in first or "$" in first:
        return False  # prose, a path, a variable's value: not run
    return shutil.which(first) is not None or _close_to_known(first)


def _close_to_known(word: str) -> bool:
    """A misspelt command (`ipp link`) is still a command: replay finds its typo."""
    import difflib

    return bool(difflib.get_close_matches(word, LEADING, n=1, cutoff=0.75))


def _plain(lines: list[str], i: int, out: list[Command]) -> int:
    raw = lines[i]
    inline = INLINE.match(raw)
    if inline:
        text = inline.group(1).strip()
        rest = raw[inline.end() :].strip()
        made = _command(i, text, "inline")
        if made is not None and _leading(made.text) and (not rest or grammar.whole(made.text)):
            out.append(made)
        out += prose.commands(rest, i, _command, is_command) if rest else []
        return i + 1
    stripped = raw.strip()
    cmd = _prompt_command(stripped)
    source = "prompt"
    if cmd is None and ((_leading(stripped) and _looks_typed(stripped)) or ASSIGNMENT.match(stripped)):
        cmd, source = stripped, "plain"
    if cmd is None:
        out += prose.commands(raw, i, _command, is_command)
        return i + 1
    first = i
    cmd, nxt = _continued(lines, i, len(lines), cmd)
    made = _command(first, cmd, source)
    if made is not None:
        host = CONTAINER_HOST.match(stripped)
        out.append(replace(made, container=host.group(1)) if host else made)
    return nxt


def _prompt_command(line: str) -> str | None:
    """The command after a prompt (`$ `, `# ` before a known command, `user@host:~$ `), else None."""
    s = line.strip()
    m = PROMPT.match(s)
    if m is None:
        return None
    rest = s[m.end() :]
    if s.startswith("#") and not _leading(rest):
        return None  # a comment, not a root prompt
    return rest


def _comment_or_blank(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _continued(lines: list[str], j: int, end: int, cmd: str) -> tuple[str, int]:
    """Join backslash-continued lines; returns the command and the next line's index."""
    j += 1
    while cmd.endswith("\\") and j < end:
        nxt = _prompt_command(lines[j])
        cmd = cmd[:-1].rstrip() + " " + (nxt if nxt is not None else lines[j].strip())
        j += 1
    return cmd, j


def _leading(text: str) -> bool:
    words = text.split()
    return bool(words) and words[0] in LEADING


def _looks_typed(text: str) -> bool:
    """A prose line may start with 'ping' or 'ip': a command line has no sentence end."""
    return not re.search(r"[a-z]{3,}[.!?:]$", text) and not re.search(r"\b(the|is|are|this|that|will|you)\b", text)


def _command(index: int, text: str, source: str) -> Command | None:
    """The Command on line *index* (0-based), its `# expect:` mark read, `sudo` and Jekyll's raw tags removed."""
    expect = None
    m = EXPECT.search(text)
    if m:
        expect, text = m.group(1).lower(), text[: m.start()]
    text = strip_sudo(re.sub(r"\{%\s*(?:end)?raw\s*%\}", "", text).strip())
    if not text:
        return None
    return Command(index + 1, text, expect, source)


def strip_sudo(text: str) -> str:
    """`sudo [-E] [-i] cmd` -> `cmd` (replay runs as the sandbox's root anyway)."""
    m = re.match(r"^sudo(?:\s+-[A-Za-z]+)*\s+(?=\S)", text)
    return text[m.end() :] if m else text
