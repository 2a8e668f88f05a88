# Tutorial 002, steps 2-11. The host is where this script starts.
ip netns add container1
ip link add veth1 type veth peer name ceth1
ip link set ceth1 netns container1
ip link set veth1 up
ip netns exec container1 ip link set ceth1 up
ip netns exec container1 ip addr add 172.16.0.2/24 dev ceth1
ip netns exec container1 ip route add default via 172.16.0.2 dev ceth1
