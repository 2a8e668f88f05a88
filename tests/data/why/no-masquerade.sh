# container1 behind the host's bridge; the outside (a documentation address)
# knows nothing of 10.0.0.0/24, so its replies have nowhere to go.
ip netns add container1
ip netns add outside
sysctl -qw net.ipv4.ip_forward=1
ip link add br0 type bridge
ip addr add 10.0.0.1/24 dev br0
ip link set br0 up
ip link add veth1 type veth peer name eth0 netns container1
ip link set veth1 master br0
ip link set veth1 up
ip -n container1 link set lo up
ip -n container1 addr add 10.0.0.2/24 dev eth0
ip -n container1 link set eth0 up
ip -n container1 route add default via 10.0.0.1
ip link add uplink type veth peer name eth0 netns outside
ip addr add 203.0.113.2/24 dev uplink
ip link set uplink up
ip -n outside link set lo up
ip -n outside addr add 203.0.113.1/24 dev eth0
ip -n outside link set eth0 up
