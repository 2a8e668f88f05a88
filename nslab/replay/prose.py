"""Commands written inside sentences, and what the sentences say of their outcome.

"To create a network namespace, run ip netns add container1" holds a command:
one comes after "run" (and its like: "execute", "type", "running"), after
`sudo`, or is an `ip netns exec NS ...` anywhere outside a code span, and it
ends where its grammar ends (nslab/replay/grammar.py), or at its sentence's
end. "We can use the ip tools" holds none: `tools` is no object of ip.

The words around a probe (the rest of its sentence, the lines after it up to
the next command, the sentence that leads into it) may say it fails: "The ping
hangs", "still unsuccessful", "you will not be able to". Such a probe is
expected to fail, as if marked `# expect: fail`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from nslab.replay import grammar

if TYPE_CHECKING:
    from nslab.replay.tutorial import Command

PROBES = ("ip", "ping", "nc", "ncat", "netcat", "curl", "wget", "sysctl", "bridge", "ethtool", "iptables", "nft")
TRIGGER = re.compile(
    r"(?:\b(?:run|running|execute|executing|type|enter)(?:\s+the\s+command)?\s*:?\s+|(?<![`\w])(?=sudo\s)|(?<![`\w])(?=ip\s+netns\s+exec\s))"
    r"(?=(?:sudo\s+)?(?:" + "|".join(PROBES) + r")\s)"
)
SPAN = re.compile(r"\b(?:run|running|execute|launch|type)\b[^`.]{0,40}?```([^`]+)```|\bthis command\s*:?\s*```([^`]+)```")
FAILS = re.compile(
    r"\b(hangs?|hanging|still unsuccessful|(?:is|was) unsuccessful|not (?:be )?able to|cannot reach|can't reach|unable to reach|"
    r"(?:will|would|should) fail|fails|is unreachable|host unreachable|no reply|times? out|does(?: not|n't) work)\b",
    re.IGNORECASE,
)
WINDOW = 3  # lines of prose after a command that may speak of it


def commands(text: str, index: int, make: Callable[[int, str, str], Command | None], runs: Callable[[str], bool]) -> list[Command]:
    """The commands inside the sentence(s) *text* (line *index*, 0-based), each made by *make*;
    a code span after "run" counts when *runs* takes it for a command."""
    out: list[Command] = []
    if text.lstrip().startswith("#"):
        return out  # a comment (`#ip netns exec <network namespace name> <command>`)
    code = [(m.start(), m.end()) for m in re.finditer(r"```[^`]*```|`[^`]*`", text)]
    spent = 0  # where the last command found ends: a trigger inside it starts no other
    for m in TRIGGER.finditer(text):
        if any(a <= m.end() < b for a, b in code) or m.end() < spent:
            continue
        words = _sentence_words(text[m.end() :])
        n = grammar.end(words)
        if n and grammar.end(words[:n]) == n:
            made = make(index, " ".join(words[:n]), "prose")
            spent = m.end() + _length(text[m.end() :], n)
            if made is not None:
                out.append(replace(made, said=_fails(text[spent:])))
    for m in SPAN.finditer(text):
        made = make(index, (m.group(1) or m.group(2)).strip(), "prose")
        if made is not None and runs(made.text) and grammar.end(made.text.split()):
            out.append(made)
    return out


def _length(text: str, n: int) -> int:
    """How many characters of *text* its first *n* words take."""
    m = re.match(r"\s*(?:\S+\s*){%d}" % n, text)
    return m.end() if m else len(text)


def _sentence_words(text: str) -> list[str]:
    """The words up to the first one that ends a sentence (kept, without its mark)."""
    out: list[str] = []
    for w in text.split():
        if re.search(r"[.,;!?:]$", w) and not re.match(r"^\d+(\.\d+){3}(/\d+)?$", w):
            stripped = w.rstrip(".,;!?:")
            return out + ([stripped] if stripped else [])
        out.append(w)
    return out


def _fails(text: str) -> str | None:
    m = FAILS.search(text)
    return m.group(0) if m else None


def expectations(found: list[Command], lines: list[str]) -> list[Command]:
    """Each command with the prose after it (up to the next command, not a sentence that leads into
    the next one, ending in ':') and the sentence that leads into it read for a failure."""
    out = []
    starts = [c.line for c in found]
    for k, c in enumerate(found):
        if c.said is not None:
            out.append(c)
            continue
        nxt = starts[k + 1] if k + 1 < len(found) else len(lines) + 1
        after = _prose(lines[c.line : min(nxt - 1, c.line + WINDOW + len(c.shown) + 2)], c.shown)
        if after and after[-1].rstrip().endswith(":"):
            after = after[:-1]  # it leads into the next command
        before = _lead_in(lines, c.line - 1, starts[k - 1] if k else 0)
        out.append(replace(c, said=_fails(" ".join(after)) or _fails(before)))
    return out


def _prose(window: list[str], shown: tuple[str, ...]) -> list[str]:
    """The lines of *window* that are prose: not the output shown, not a fence or a prompt."""
    marks = ("```", "~~~", "{%", "{{<", "$ ", "#")
    return [line for line in window if line.strip() and line not in shown and not line.lstrip().startswith(marks)]


def _lead_in(lines: list[str], index: int, previous: int) -> str:
    """The last sentence of the prose just before line *index* (0-based; its block's fence skipped)
    when it leads into the command (ends in ':') and no command (at 1-based line *previous*) stands between."""
    j = index - 1
    while j >= 0 and (not lines[j].strip() or lines[j].lstrip().startswith(("```", "~~~", "{%", "{{<"))):
        j -= 1
    if j < 0 or j < previous or not lines[j].rstrip().endswith(":"):
        return ""  # only a sentence that leads into the command ("..., nothing listens there:")
    return _last_sentence(lines[j])


def _last_sentence(line: str) -> str:
    parts = re.split(r"(?<=[.!?])\s+", line.strip())
    return parts[-1] if parts else ""
