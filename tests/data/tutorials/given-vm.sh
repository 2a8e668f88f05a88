# What the tutorial's VM already has: a LAN on eth0 with a router at 192.0.2.1.
ip netns add lan
ip link add eth0 type veth peer name eth0 netns lan
ip addr add 192.0.2.10/24 dev eth0
ip link set eth0 up
ip -n lan addr add 192.0.2.1/24 dev eth0
ip -n lan link set eth0 up
ip -n lan link set lo up
