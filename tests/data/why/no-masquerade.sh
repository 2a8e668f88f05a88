# container1 behind the host's bridge; the host's uplink leads to "the
# internet": a namespace nslab is not told about (made by unshare, unnamed),
# which knows nothing of 10.0.0.0/24, so its replies have nowhere to go.
ip netns add container1
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
unshare --net sleep 600 &
internet=$!
# wait (bounded) until it has its own network namespace
for i in $(seq 1000); do [ "$(readlink /proc/$internet/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; done
[ "$(readlink /proc/$internet/ns/net)" != "$(readlink /proc/self/ns/net)" ]
ip link add uplink type veth peer name eth0 netns "$internet"
ip addr add 198.51.100.2/24 dev uplink
ip link set uplink up
ip route add default via 198.51.100.1
nsenter -t "$internet" -n sh -e -c '
ip link set lo up
ip addr add 198.51.100.1/24 dev eth0
ip addr add 203.0.113.1/32 dev lo
ip link set eth0 up'
