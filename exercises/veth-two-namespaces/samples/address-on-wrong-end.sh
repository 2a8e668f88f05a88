# Both addresses typed on the ns1 side: 10.0.0.2 ends up on v1, not on v2.
ip netns add ns1
ip netns add ns2
ip link add v1 type veth peer name v2
ip link set v1 netns ns1
ip link set v2 netns ns2
ip netns exec ns1 ip link set lo up
ip netns exec ns2 ip link set lo up
ip netns exec ns1 ip link set v1 up
ip netns exec ns2 ip link set v2 up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev v1
ip netns exec ns1 ip addr add 10.0.0.2/24 dev v1
