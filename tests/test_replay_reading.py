"""How `nslab replay` reads a tutorial as people write it, without running it: commands in
sentences ending where their grammar ends, output kept with its command, the words that say a
probe fails, and what an `ip` command's shown output is compared on.
"""

from __future__ import annotations

from pathlib import Path

from nslab.replay import compare, grammar, kinds, standin
from nslab.replay.tutorial import commands

DATA = Path(__file__).parent / "data" / "tutorials"


def test_commands_in_sentences_end_where_their_grammar_ends():
    found = [(c.line, c.text, c.source) for c in commands((DATA / "prose.txt").read_text())]
    assert found[:7] == [
        (3, "ip netns add red", "prose"),  # "... and look at it": `and` is no argument of netns add
        (4, "ip netns", "prose"),  # the sentence ends after it
        (5, "ip link add a0 type veth peer name b0", "prose"),  # "a pair whose ends ..." follows the peer's name
        (6, "ip link set b0 netns red", "prose"),  # after sudo, not after "run"
        (7, "ip netns exec red ip link show b0", "prose"),  # `ip netns exec` anywhere; "which" ends it
        (9, "ping -c 1 -W 1 10.1.0.2", "prose"),  # one host, then prose
        (10, "ip -n red addr", "prose"),  # a code span after "run"; ```ip route``` is only named
    ]
    texts = [text for _, text, _ in found]
    assert not any("tools" in t or "address of" in t for t in texts)  # "the ip tools", "the ip address of a0": prose


def test_grammar_knows_ip_objects_commands_and_their_arguments():
    def cut(text: str) -> str:
        words = text.split()
        return " ".join(words[: grammar.end(words)])

    assert cut("ip addr host device IP addresses") == "ip addr"
    assert cut("ip link set ceth1 netns container1 container-with-veth-pair") == "ip link set ceth1 netns container1"
    assert cut("ip netns exec container1 ip route route inside container") == "ip netns exec container1 ip route"
    assert cut("ip route add 172.16.0.0/24 dev veth1 via") == "ip route add 172.16.0.0/24 dev veth1"
    assert cut("nc 10.0.0.1 8080 and type") == "nc 10.0.0.1 8080"
    assert cut("ip tools allow us") == ""


def test_output_beside_a_command_is_kept_with_it_and_never_run():
    found = {c.line: c for c in commands((DATA / "prose.txt").read_text())}
    assert found[13].shown[0].startswith("2: a0@if3: <BROADCAST,MULTICAST>")  # `#=>` marks it
    assert found[15].shown == ("7863",)
    assert found[20].shown[:3] == ("    link/ether 5a:1c:2b:00:00:01 brd ff:ff:ff:ff:ff:ff", "CNI_COMMAND", "/proc/$pid/ns/net")
    assert found[28].shown == ("lo               UNKNOWN        00:00:00:00:00:00 <LOOPBACK,UP,LOWER_UP>",)  # a Hugo output block after it
    assert found[35].text == "ip addr" and found[35].container == "4d0e8ada345c"  # typed at the container's prompt
    assert sorted(found) == [3, 4, 5, 6, 7, 9, 10, 13, 15, 20, 28, 35]  # no line of output, table or Italian prose is a command


def test_the_words_around_a_probe_say_it_fails():
    said = {c.line: c.said for c in commands((DATA / "prose.txt").read_text())}
    assert said[9] == "hangs"  # the rest of its sentence
    said = {c.line: c.said for c in commands((DATA / "words.md").read_text())}
    assert said[16] == "still unsuccessful"  # the paragraph after its block
    assert said[32] == "not be able to"  # the sentence that leads into it, ending in ':'
    assert said[26] is None and said[44] is None


def test_shown_output_is_compared_on_names_states_and_addresses_the_tutorial_uses():
    shown = (
        "4: v2@v1: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN mode DEFAULT",
        "    link/ether ba:22:31:bf:fa:04 brd ff:ff:ff:ff:ff:ff",
        "3: enp0s8: <UP> state UP",
    )
    printed = "2: v2@v1: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state UP mode DEFAULT\n    link/ether 5e:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n"
    known = compare.known_names(["ip link add v1 type veth peer name v2"])
    assert compare.comparable("ip netns exec ns1 ip link") == "link" and compare.comparable("ip link | grep v1") is None
    assert compare.differences("link", shown, printed, known) == ["v2's state is UP, the tutorial shows DOWN"]  # enp0s8 is the author's, MACs differ anyway
    assert compare.differences("netns", ("ns2", "ns1"), "ns2 (id: 0)\n", compare.known_names(["ip netns add ns1", "ip netns add ns2"])) == [
        "namespace ns1 is not listed, the tutorial shows it"
    ]


def test_containers_and_host_veths_the_tutorial_uses_but_never_starts_are_given():
    texts = [c.text for c in commands((DATA / "docker.md").read_text())]
    assert standin.given(texts, []) == ["4d0e8ada345c", "kind-worker"]  # `$contid` is one it runs itself
    assert standin.host_veths(["ethtool -S vetheeed635", "ip link add veth1234567 type veth peer name x", "ip link show veth1234567"]) == ["vetheeed635"]


def test_a_line_using_a_scripts_arguments_is_skipped_saying_so():
    # "docker run --net=container:$contid $@": a line of the script the tutorial quotes; replayed
    # command by command it would get no arguments and fail for the replay's sake, not the tutorial's.
    reason = kinds.skip_reason("docker run --net=container:$contid $@")
    assert reason is not None and reason.startswith("uses $@, an argument of the script")
    assert kinds.script_argument('ip link set "${1}" up') == "${1}"
    # Not a script's argument: awk's fields in single quotes, a function's own, the shell's other variables.
    assert kinds.script_argument("ip link | awk '/^[0-9]+:/ {print $2}'") is None
    assert kinds.script_argument("mkns() { ip netns add $1; }") is None
    assert kinds.script_argument("pid=$(docker inspect -f x $contid); echo $$ $? $0") is None
    assert kinds.skip_reason("ip link set veth0 up") is None
