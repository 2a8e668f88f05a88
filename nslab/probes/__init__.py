"""Probes run inside a lab namespace, routed by the kernel, bounded by a deadline.

Each returns a `Result` (nslab.probes.result); they raise only for misuse.
Sockets are opened by the lab inside the right namespace and reused.
"""

from nslab.probes.result import IcmpError, Outcome, Result

__all__ = ["IcmpError", "Outcome", "Result"]
