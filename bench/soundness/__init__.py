"""`./run soundness`: does an early verdict ever contradict the full wait?

Each case of the corpus (corpus/cases.py) is a small lab with one
injected fault or twist and one probe. It is probed twice, each time in a
fresh lab: the early verdict (the default), then the ground truth, the same
probe with early settling off (`lab.settle_early = False`), which waits out
its deadline. A row per case, every miss with both verdicts, then a line per address family:

    soundness ipv4: outcome agreement A/N, cause accuracy C/N, median early verdict X ms (N of T cases)
    soundness ipv6: ... (the IPv6 share, corpus/cases6.py, scored on its own)

Outcome agreement: early and full-wait outcomes are the same. Cause accuracy:
the early verdict's cause is the injected one and names the injected namespace
(`result.where.ns`). The run fails unless agreement is N/N and accuracy is at
least 95% in each family, or when a full wait contradicts what the case says the kernel does.
"""
