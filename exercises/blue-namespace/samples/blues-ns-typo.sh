# lo brought up in "blues_ns", a namespace that does not exist: blue_ns keeps lo down.
ip netns add blue_ns
ip netns exec blues_ns ip link set dev lo up
ip link add dev veth_root_ns type veth peer name veth_blue_ns
ip link set dev veth_root_ns up
ip link set veth_blue_ns netns blue_ns
ip netns exec blue_ns ip link set dev veth_blue_ns up
ip address add 10.0.0.1/24 dev veth_root_ns
ip netns exec blue_ns ip address add 10.0.0.2/24 dev veth_blue_ns
ip netns exec blue_ns ip route add default via 10.0.0.1
