"""A tutorial's shell commands, in order, with the line each came from.

Commands come from fenced `sh`/`bash`/`shell`/`console` blocks (Markdown
fences or Jekyll `{% highlight bash %}`), from a fenced span that starts a
line (```ip link```), and, in plain text copied from a web page, from lines
that start with a prompt (`$ `, `# `, `user@host:~$ `) or with a command
learners type (`ip`, `ping`, `curl`, ...). Prompts and `sudo` are stripped;
a trailing backslash joins lines; a trailing `# expect: fail` or
`# expect: ok` is the author's expected outcome.

In a block with prompts only the prompted lines are commands (the rest is
output); in a block without them every line that is not a comment is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
INLINE = re.compile(r"^\s*```([^`]+)```")


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line of the tutorial where it starts
    text: str  # as the shell will run it (prompt and sudo stripped)
    expect: str | None = None  # 'ok', 'fail', or None (the author said nothing)
    source: str = "fenced"  # 'fenced', 'inline', 'prompt' or 'plain'


def commands(text: str) -> list[Command]:
    """Every command of the tutorial *text*, in order."""
    out: list[Command] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lang = _opening(lines[i])
        if lang is not None:
            end = _closing(lines, i)
            if lang.lower() in SHELLS:
                out += _block(lines, i + 1, end)
            i = end + 1
            continue
        i = _plain(lines, i, out)
    return out


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
    """A shell block: prompted lines only if it has prompts, else every non-comment line."""
    body = list(range(start, end))
    prompted = any(_prompt_command(lines[j]) is not None for j in body)
    out, j = [], start
    while j < end:
        raw = lines[j]
        cmd = _prompt_command(raw) if prompted else (None if _comment_or_blank(raw) else raw.strip())
        if cmd is None:
            j += 1
            continue
        first = j
        cmd, j = _continued(lines, j, end, cmd)
        made = _command(first, cmd, "fenced")
        if made is not None:
            out.append(made)
    return out


def _plain(lines: list[str], i: int, out: list[Command]) -> int:
    raw = lines[i]
    inline = INLINE.match(raw)
    if inline:
        made = _command(i, inline.group(1).strip(), "inline")
        if made is not None and _leading(made.text):
            out.append(made)
        return i + 1
    stripped = raw.strip()
    cmd = _prompt_command(stripped)
    source = "prompt"
    if cmd is None and ((_leading(stripped) and _looks_typed(stripped)) or ASSIGNMENT.match(stripped)):
        cmd, source = stripped, "plain"
    if cmd is None:
        return i + 1
    first = i
    cmd, nxt = _continued(lines, i, len(lines), cmd)
    made = _command(first, cmd, source)
    if made is not None:
        out.append(made)
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
