# The host has its route to container1, but container1 has no way back.
ip netns add container1
ip link add veth1 type veth peer name ceth1
ip link set ceth1 netns container1
ip addr add 10.0.0.10/24 dev veth1
ip link set veth1 up
ip route add 172.16.0.0/24 dev veth1
ip -n container1 link set lo up
ip -n container1 addr add 172.16.0.2/24 dev ceth1
ip -n container1 link set ceth1 up
