"""Tutorial 001 "network namespaces", section 2: a fresh namespace and its loopback.

      blue_ns
      lo (down until `ip link set dev lo up`)
      python3 -m http.server 8080

A new namespace is empty: lo is there but down, so not even 127.0.0.1 works
until it is brought up; then a web server inside answers on localhost:8080,
and the root namespace's own localhost is a different one.
"""

from __future__ import annotations

import os
import sys

from nslab import Cause, Outcome


def start_web_server(ns):
    """$ python3 -m http.server 8080 (in that namespace)"""
    return ns.serve([sys.executable, "-m", "http.server", "8080", "--directory", os.path.dirname(__file__)], 8080)


def test_01_ip_netns_add_blue_ns(lab):
    lab.add_namespace("blue_ns")
    assert os.listdir(lab.kernel.sandbox.netns_dir) == ["blue_ns"]


def test_02_new_namespace_is_empty_lo_down(lab):
    blue = lab.add_namespace("blue_ns")
    assert blue.link_names() == ["lo"]
    assert blue.link("lo").state == "DOWN"
    assert blue.addresses() == []


def test_03_cannot_ping_127_0_0_1_with_lo_down(lab):
    blue = lab.add_namespace("blue_ns")
    result = blue.ping("127.0.0.1")
    assert result.outcome is Outcome.LOCAL_ERROR and result.errno_name == "ENETUNREACH", result
    assert result.cause is Cause.LOOPBACK_DOWN


def test_04_ping_127_0_0_1_after_lo_up(lab):
    # $ sudo ip netns exec blue_ns ip link set dev lo up
    blue = lab.add_namespace("blue_ns")
    blue.set_link("lo", up=True)
    assert {a.cidr for a in blue.addresses("lo")} >= {"127.0.0.1/8"}
    assert blue.ping("127.0.0.1").replied


def test_05_web_server_answers_on_localhost_8080(lab):
    # $ sudo ip netns exec blue_ns curl localhost:8080
    blue = lab.add_namespace("blue_ns")
    blue.set_link("lo", up=True)
    start_web_server(blue)
    result = blue.http_get("127.0.0.1", 8080)
    assert result.replied and result.status == 200, result


def test_06_web_server_is_not_on_the_hosts_localhost(lab):
    blue = lab.add_namespace("blue_ns")
    blue.set_link("lo", up=True)
    host = lab.add_namespace("host", lo_up=True)
    start_web_server(blue)
    result = host.http_get("127.0.0.1", 8080)
    assert result.outcome is Outcome.REFUSED, result  # the host's lo is another lo
    assert result.cause is Cause.PORT_CLOSED
