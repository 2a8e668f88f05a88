"""The fault corpus: labs with one injected fault or twist, and what the kernel does with each.

Used by `./run soundness` (bench/soundness/) to score early verdicts against the full
wait, and by the tests (tests/test_twists.py, tests/test_soundness_generated.py);
not part of nslab's wheel.

    cases.py, cases6.py   the written cases, IPv4 and the IPv6 share: a lab, a fault, a probe, the expected verdict
    labs.py, labs6.py     their small labs and the steps that change them
    features.py           what a case needs of the kernel and the machine, and why it skips without it
    generated.py          generated cases: a catalog lab, one random change (knobs.py, firewall.py), scored
    twin6.py              each catalog lab's dual-stack twin, for the generated IPv6 cases
"""
