"""The kernel's own drop reasons, per packet (`tracepoint:skb:kfree_skb` through bpftrace).

`monitor()` is this process's monitor (a follower of the run's shared one when there is one: nslab.kernel.drops.shared),
`off(why)` one that never starts (see nslab.kernel.drops.monitor for how drops are attributed and how the child
lives and dies); `Drop` is one report.
"""

from nslab.kernel.drops.monitor import OFF_VARIABLE, DropMonitor, missing, off
from nslab.kernel.drops.records import ETH_P_ARP, ETH_P_IP, Drop, Inner, Mark, decode, parse, reason_names
from nslab.kernel.drops.shared import monitor

__all__ = ["ETH_P_ARP", "ETH_P_IP", "OFF_VARIABLE", "Drop", "DropMonitor", "Inner", "Mark", "decode", "missing", "monitor", "off", "parse", "reason_names"]
