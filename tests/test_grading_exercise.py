"""Exercise files: every shipped exercise loads, and each kind of mistake an
instructor can make is one line naming the field (no kernel needed)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from nslab.grading import exercise as ex
from nslab.grading.exercise import ExerciseError

SHIPPED = sorted(p.name for p in ex.EXERCISES.iterdir() if (p / "exercise.toml").is_file())

VALID = {
    "title": "t",
    "goal": "g",
    "checks": [
        {"id": "ns1", "type": "namespace", "ns": "ns1", "points": 1, "hint": "ip netns add ns1"},
        {"id": "ping", "type": "ping", "from": "ns1", "to": "10.0.0.2", "points": 2, "hint": "h"},
    ],
}


def test_three_tutorial_exercises_are_shipped():
    assert {"veth-two-namespaces", "host-to-container", "bridge-three-containers"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_exercise_loads(name):
    exercise = ex.load(name)
    assert exercise.total == sum(c.points for c in exercise.checks) > 0
    assert all(c.hint and c.describe() for c in exercise.checks)


def test_shipped_exercises_cover_every_kind_of_check():
    kinds = {c.type for name in SHIPPED for c in ex.load(name).checks}
    assert kinds == set(ex.CHECK_FIELDS)
    assert any(c.get("expect") == "no-reply" for name in SHIPPED for c in ex.load(name).checks), "no isolation check"


def _with(path: str, value):
    """VALID with one field set (value None: removed); path like 'checks.1.points'."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return data


@pytest.mark.parametrize(
    "path, value, field, words",
    [
        ("checks.1.points", None, "checks[1].points", "missing"),
        ("checks.1.points", 0, "checks[1].points", "not a whole number > 0"),
        ("checks.1.points", "2", "checks[1].points", "not a whole number > 0"),
        ("checks.1.type", "pingg", "checks[1].type", "unknown check type 'pingg'"),
        ("checks.1.to", "10.0.0.256", "checks[1].to", "not an IP address"),
        ("checks.1.hint", None, "checks[1].hint", "missing"),
        ("checks.1.colour", "red", "checks[1].colour", "unknown field for a ping check"),
        ("checks.1.expect", "maybe", "checks[1].expect", "'reply' or 'no-reply'"),
        ("checks.1.cause", "BAD_LUCK", "checks[1].cause", "unknown cause 'BAD_LUCK'"),
        ("checks.1.id", "ns1", "checks[1].id", "used twice"),
        ("checks.0.ns", "a/b", "checks[0].ns", "must be a file name"),
        ("title", None, "title", "missing"),
        ("checks", [], "checks", "at least one check"),
        ("host", "my host", "host", "must be a file name"),
        ("extra", 1, "extra", "unknown field"),
    ],
)
def test_invalid_exercise_is_one_line_naming_the_field(path, value, field, words):
    with pytest.raises(ExerciseError) as info:
        ex.parse(_with(path, value), name="t", source="bad.toml")
    message = str(info.value)
    assert info.value.field == field
    assert message.startswith(f"bad.toml: {field}: ") and words in message
    assert "\n" not in message


def test_address_check_takes_a_cidr_and_names_the_fix():
    data = _with("checks.0", {"id": "a", "type": "address", "ns": "ns1", "dev": "v1", "cidr": "10.0.0.1", "points": 1, "hint": "h"})
    with pytest.raises(ExerciseError, match=r"checks\[0\]\.cidr: '10.0.0.1' is not an address with a prefix length; write it like '10.0.0.1/24'"):
        ex.parse(data, name="t")


def test_toml_syntax_error_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('title = "x"\ngoal = \n')
    with pytest.raises(ExerciseError, match=r"broken.toml: syntax: .*line 2"):
        ex.load(bad)


def test_json_exercise_is_accepted(tmp_path):
    import json

    path = tmp_path / "mine.json"
    path.write_text(json.dumps(VALID))
    exercise = ex.load(path)
    assert exercise.name == "mine" and exercise.total == 3


def test_cli_rejects_an_invalid_exercise_with_status_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "t"\ngoal = "g"\n[[checks]]\nid = "x"\ntype = "ping"\nfrom = "ns1"\nto = "10.0.0.2"\nhint = "h"\n')
    script = tmp_path / "s.sh"
    script.write_text("true\n")
    proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "grade", str(bad), str(script)], check=False, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"nslab grade: invalid exercise: {bad}: checks[0].points: missing; a ping check needs from, hint, id, points, to"]


def test_cli_usage_errors_have_status_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "grade", "veth-two-namespaces"], check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and "give one or more student scripts" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "nslab.cli.main", "grade", "no-such-exercise", "--live"], check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and "known exercises: " in proc.stderr
