"""Graded lab exercises: a student's own `ip` commands, run in a jail, scored with hints.

    nslab grade veth-two-namespaces solution.sh [more.sh ...] [-j 2] [--json F] [--junit F]
    nslab grade host-to-container --live        # what is built on this machine, read-only

Modules: exercise (data files -> validated checks), jail (one sandbox per
submission, with limits), runner (forked graders, live mode), checks (each
check type, with nslab's probes and explanations), scoring (text, JSON,
JUnit), command (CLI). The model of namespaces nslab did not build is read
by nslab/lab/observed.py.
"""

from nslab.grading.exercise import Check, Exercise, ExerciseError, load
from nslab.grading.jail import Limits
from nslab.grading.scoring import CheckResult, Grade

__all__ = ["Check", "CheckResult", "Exercise", "ExerciseError", "Grade", "Limits", "load"]
