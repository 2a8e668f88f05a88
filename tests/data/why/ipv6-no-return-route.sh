# IPv6 only. The host has its route to container1's prefix, but container1 has no way back.
ip netns add container1
ip link add veth1 type veth peer name ceth1
ip link set ceth1 netns container1
ip -6 addr add 2001:db8:10::10/64 dev veth1 nodad
ip link set veth1 up
ip -6 route add fd00:172:16::/64 dev veth1
ip -n container1 link set lo up
ip -n container1 -6 addr add fd00:172:16::2/64 dev ceth1 nodad
ip -n container1 link set ceth1 up
