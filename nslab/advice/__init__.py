"""Help beyond nslab's own labs: why a probe fails on the machine as it is,
verified fixes for it, and the packet's path drawn on the lab.

- copy.py: the observed state of namespaces, and a copy built in a fresh sandbox
- changes.py: the single changes learners most often need, as commands
- trials.py: tries them on the copy; keeps those that make the probe succeed
- fixes.py: `fixes_for(result, lab)`, the lines a learner types
- machine.py: `nslab why` on this machine's namespaces (names, host, PIDs)
- path.py: the request's and reply's way, the stop and the fix on the diagram
"""
