# Two IPv6 networks and a router between them.
ip netns add ns1
ip netns add router
ip netns add ns2
ip link add v1 netns ns1 type veth peer name r1 netns router
ip link add v2 netns ns2 type veth peer name r2 netns router
ip -n ns1 -6 addr add 2001:db8:1::2/64 dev v1 nodad
ip -n router -6 addr add 2001:db8:1::1/64 dev r1 nodad
ip -n router -6 addr add 2001:db8:2::1/64 dev r2 nodad
ip -n ns2 -6 addr add 2001:db8:2::2/64 dev v2 nodad
ip -n ns1 link set v1 up
ip -n router link set r1 up
ip -n router link set r2 up
ip -n ns2 link set v2 up
ip -n ns1 -6 route add default via 2001:db8:1::1
ip -n ns2 -6 route add default via 2001:db8:2::1
ip netns exec router sysctl -w net.ipv6.conf.all.forwarding=1
