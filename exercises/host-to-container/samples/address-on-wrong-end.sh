# The container's address put on the host's end instead of ceth1.
ip netns add container1
ip link add veth1 type veth peer name ceth1
ip link set ceth1 netns container1
ip link set veth1 up
ip netns exec container1 ip link set ceth1 up
ip addr add 172.16.0.2/24 dev veth1
ip netns exec container1 ip route add default dev ceth1
