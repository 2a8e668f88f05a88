"""The drop monitor loads the kernel's structs from offsets it read in the kernel's BTF
(nslab.kernel.drops.btf): on the same dropped packets, each load gives what bpftrace's own
struct access gives."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import threading

import pytest

from nslab import Namespace, Topology
from nslab.kernel import linux
from nslab.kernel.drops import btf
from nslab.kernel.drops.program import _CHILD
from nslab.kernel.process import _dies_with_us

monitor = importlib.import_module("nslab.kernel.drops.monitor")  # the package's `monitor` is the function

pytestmark = pytest.mark.skipif(monitor.missing() is not None, reason=f"drop reasons unavailable: {monitor.missing()}")

# field -> (bpftrace's struct access from $s, a struct sk_buff *; the pointer the offset is from, given $r, the same skb as a number)
THROUGH_STRUCTS = {
    "skb_dev": ("(uint64)$s->dev", "$r"),
    "skb_refdst": ("(uint64)$s->_skb_refdst", "$r"),
    "skb_sk": ("(uint64)$s->sk", "$r"),
    "skb_head": ("(uint64)$s->head", "$r"),
    "skb_network_header": ("(uint64)$s->network_header", "$r"),
    "skb_tail": ("(uint64)$s->tail", "$r"),
    "dev_net": ("(uint64)$s->dev->nd_net.net", "$dev"),
    "dev_ifindex": ("(uint64)$s->dev->ifindex", "$dev"),
    "dst_dev": ("(uint64)((struct dst_entry *)($s->_skb_refdst & ~(uint64)1))->dev", "$dst"),
    "sk_net": ("(uint64)$s->sk->__sk_common.skc_net.net", "$sk"),
    "net_inum": ("(uint64)$s->dev->nd_net.net->ns.inum", "$net"),
}
LOADS = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


def _program(fields: dict[str, btf.Field], netns: int) -> str:
    def raw(name: str) -> str:
        field = fields[name]
        return f"(uint64)*({LOADS[field.size]} *)({THROUGH_STRUCTS[name][1]} + {field.offset})"

    pairs = [part for name in THROUGH_STRUCTS for part in (THROUGH_STRUCTS[name][0], raw(name))]
    return f"""
BEGIN {{ printf("ready\\n"); }}
tracepoint:skb:kfree_skb /args->protocol == 0x0800/ {{
  $s = (struct sk_buff *)args->skbaddr; $r = (uint64)args->skbaddr;
  $dev = {raw("skb_dev")}; $dst = {raw("skb_refdst")} & ~(uint64)1; $sk = {raw("skb_sk")}; $net = {raw("dev_net")};
  $ns = (uint64)0;
  if ($dev != 0) {{ $ns = (uint64)$s->dev->nd_net.net->ns.inum; }} else if ($sk != 0) {{ $ns = (uint64)$s->sk->__sk_common.skc_net.net->ns.inum; }}
  if ($ns == {netns}) {{ printf("F{" %llu" * len(pairs)}\\n", {", ".join(pairs)}); }}
}}
"""


def test_each_field_loaded_from_its_btf_offset_is_what_bpftrace_reads_through_the_structs(make_lab):
    """Two drops in a lab namespace: UDP to a closed port (received on lo: skb->dev is set), and
    UDP that an nftables output chain drops (no device yet: its route's and its socket's)."""
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (apt-get install nftables)")
    lab = make_lab(Topology([Namespace("a", lo_up=True)]))
    fd = lab.ns("a").handle.fd
    netns = os.fstat(fd).st_ino
    argv = ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", _CHILD % monitor.TRACEFS, "bpftrace", _program(btf.fields(), netns)]
    proc = subprocess.Popen(_dies_with_us(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    watchdog = threading.Timer(60, proc.kill)  # the deadline: a killed bpftrace ends the reads below
    watchdog.start()
    lines: list[str] = []
    seen: list[list[int]] = []
    try:
        assert proc.stdout is not None
        while "ready" not in lines and (line := proc.stdout.readline()):
            lines.append(line.strip())
        assert "ready" in lines, lines[-5:]
        with linux.in_netns(fd):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.sendto(b"nslab: closed port", ("127.0.0.1", 9))
            nft = "add table ip t; add chain ip t o { type filter hook output priority 0; policy drop; }"
            lab.ns("a").run(["nft", nft], check=True)
            with pytest.raises(PermissionError):
                sock.sendto(b"nslab: dropped on its way out", ("127.0.0.1", 9))
        while len(seen) < 2 and (line := proc.stdout.readline()):
            if line.startswith("F "):
                seen.append([int(v) for v in line.split()[1:]])
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()
    assert len(seen) == 2, lines[-5:]
    names = list(THROUGH_STRUCTS)
    for values in seen:
        wrong = {name: (theirs, ours) for name, theirs, ours in zip(names, values[::2], values[1::2]) if theirs != ours}
        assert wrong == {}, "bpftrace's struct access, then the load from the BTF offset"
    received, sent = (dict(zip(names, values[::2])) for values in seen)
    assert received["skb_dev"] != 0 and received["net_inum"] == netns  # lo's
    assert sent["skb_dev"] == 0 and sent["dst_dev"] != 0 and sent["skb_sk"] != 0 and sent["sk_net"] != 0


def test_the_kernels_btf_says_ifindex_is_the_one_signed_field_and_the_program_loads_it_so():
    """net_device.ifindex is an int; the rest are pointers and unsigned integers (u16, unsigned int)."""
    from nslab.kernel.drops.program import program

    fields = btf.fields()
    assert [name for name, field in fields.items() if field.signed] == ["dev_ifindex"]
    assert f"$ifi = (int64)*(int32 *)($dev + {fields['dev_ifindex'].offset})" in program(fields)
    assert f"$nh = (uint64)*(uint16 *)($skb + {fields['skb_network_header'].offset})" in program(fields)
