# IPv6 only. container1's address is still tentative: its duplicate address detection
# takes a minute (dad_transmits=60, as a slow or lossy link would make it).
ip netns add container1
ip link add veth1 type veth peer name ceth1
ip link set ceth1 netns container1
ip -6 addr add fd00:10::10/64 dev veth1 nodad
ip link set veth1 up
ip -n container1 link set lo up
ip netns exec container1 sysctl -qw net.ipv6.conf.ceth1.dad_transmits=60
ip -n container1 link set ceth1 up
ip -n container1 -6 addr add fd00:10::2/64 dev ceth1
