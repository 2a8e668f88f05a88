"""The bpftrace program behind the monitor, and the child that runs it in its own mount namespace."""

from __future__ import annotations

from typing import Iterable, Mapping

from nslab.kernel.drops.btf import Field
from nslab.kernel.drops.records import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, RAW_WORDS

_PROGRAM = """
BEGIN { printf("nslab-ready\\n"); }
tracepoint:skb:kfree_skb
/args->protocol == %(ip)d || args->protocol == %(arp)d || args->protocol == %(ip6)d/
{
  $skb = (uint64)args->skbaddr;
  $net = (uint64)0; $ifi = (int64)0; $by = 0;
  $dev = %(skb_dev)s;
  if ($dev != 0) {
    $net = %(dev_net)s; $ifi = (int64)%(dev_ifindex)s; $by = 1;
  } else {
    $dst = %(skb_refdst)s & ~(uint64)1;
    $ddev = (uint64)0;
    if ($dst != 0) { $ddev = %(dst_dev)s; }
    if ($ddev != 0) {
      $net = %(ddev_net)s; $ifi = (int64)%(ddev_ifindex)s; $by = 2;
    } else {
      $sk = %(skb_sk)s;
      if ($sk != 0) { $net = %(sk_net)s; $by = 3; }
    }
  }
  $ns = (uint32)0;
  if ($net != 0) { $ns = %(net_inum)s; }
  $nh = (uint64)%(skb_network_header)s;
  $h = %(skb_head)s + $nh;
  $chatter = 0;
  if (args->protocol == %(ip6)d) {
    $t = (uint8)0; $next = *(uint8 *)($h + 6);
    if ($next == 58) { $t = *(uint8 *)($h + 40); }
    if ($next == 0 && *(uint8 *)($h + 40) == 58 && *(uint8 *)($h + 41) == 0) { $t = *(uint8 *)($h + 48); }
    if (($t >= 130 && $t <= 134) || $t == 143) { $chatter = 1; }
  }
  if (%(keep)s && $chatter == 0) {
    printf("D %%llu %%u %%u %%lld %%d %%u %%u %%llu %%llu %(words)s\\n",
      nsecs, cpu, $ns, $ifi, $by, args->reason, args->protocol, $nh, (uint64)%(skb_tail)s, %(reads)s);
  }
}
"""
# Each field the program reads, from the pointer in which variable (nslab.kernel.drops.btf.FIELDS names them).
_READS = {
    "skb_dev": ("$skb", "skb_dev"), "skb_refdst": ("$skb", "skb_refdst"), "skb_sk": ("$skb", "skb_sk"),
    "skb_head": ("$skb", "skb_head"), "skb_network_header": ("$skb", "skb_network_header"), "skb_tail": ("$skb", "skb_tail"),
    "dev_net": ("$dev", "dev_net"), "dev_ifindex": ("$dev", "dev_ifindex"), "dst_dev": ("$dst", "dst_dev"),
    "ddev_net": ("$ddev", "dev_net"), "ddev_ifindex": ("$ddev", "dev_ifindex"), "sk_net": ("$sk", "sk_net"), "net_inum": ("$net", "net_inum"),
}
_BITS = {1: 8, 2: 16, 4: 32, 8: 64}  # a field's size -> the bits of the load (no other size is loaded)


def program(fields: Mapping[str, Field], skip: Iterable[int] = ()) -> str:
    """The bpftrace program: one `D ...` line per dropped IPv4, IPv6 or ARP packet outside the namespaces *skip*.

    The structs' fields are loaded from their offsets in this kernel (*fields*, from its BTF:
    nslab.kernel.drops.btf), which spares bpftrace parsing the structs' types (1.9 s of CPU).
    A signed field (ifindex, an int) is loaded as signed.

    IPv6's MLD and router discovery (ICMPv6 130 to 134, and 143 behind an 8-byte hop-by-hop
    header) are left out, as the captures leave them out (nslab/diagnosis/capture.py): no probe is
    made of them, and right after a thousand fresh interfaces came up on one bridge, the CPU's
    backlog dropped 20,000 to 37,000 router solicitations a second, which pushed every other
    drop out of the monitor's window (`KEEP`) in a third of a second."""

    def load(pointer: str, name: str) -> str:
        field = fields[name]
        return f"*({'int' if field.signed else 'uint'}{_BITS[field.size]} *)({pointer} + {field.offset})"

    return _PROGRAM % {
        **{slot: load(pointer, name) for slot, (pointer, name) in _READS.items()},
        "keep": " && ".join(f"$ns != {int(inode)}" for inode in sorted(set(skip))) or "1",
        "ip": ETH_P_IP,
        "arp": ETH_P_ARP,
        "ip6": ETH_P_IPV6,
        "words": " ".join(["%llx"] * RAW_WORDS),
        "reads": ", ".join(f"*(uint64 *)($h + {8 * i})" for i in range(RAW_WORDS)),
    }


# The child: a private mount namespace with tracefs, the reason table, then bpftrace.
# Its copy of /run/netns is let go first: each namespace bound there would stay
# alive as long as bpftrace runs, and a lab could never delete it.
_CHILD = r"""
t=%s
umount -l /run/netns 2>/dev/null
if ! mountpoint -q "$t"; then
  m=$(mount -t tracefs tracefs "$t" 2>&1) || { echo "nslab-fail tracefs cannot be mounted on $t: $m"; exit 97; }
fi
cat "$t/events/skb/kfree_skb/format" 2>&1 || { echo "nslab-fail the kernel has no skb:kfree_skb tracepoint"; exit 98; }
echo nslab-format-end
exec "$0" -B line -e "$1"
"""
