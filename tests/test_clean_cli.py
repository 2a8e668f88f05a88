"""`nslab clean --dry-run` lists what a dead run left (nslab/kernel/leftovers.py finds it) and removes nothing."""

from __future__ import annotations

from nslab.cli.main import main
from nslab.kernel import leftovers


def test_clean_dry_run_lists_and_removes_nothing(capsys):
    before = leftovers.find()
    assert main(["clean", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # other runs on this machine may end meanwhile: each line says what would go, and nothing went
    assert lines == ["nothing left behind by dead nslab runs"] or all(line.startswith("would remove ") for line in lines), lines
    assert {str(item) for item in before} <= {str(item) for item in leftovers.find()}
