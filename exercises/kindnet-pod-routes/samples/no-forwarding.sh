# The nodes do not forward: ip_forward stays 0 in kind-worker and kind-worker2.
ip netns add pod1
ip -n kind-worker link add veth1 type veth peer name eth0 netns pod1
ip -n kind-worker link set veth1 up
ip -n kind-worker addr add 10.244.1.1/32 dev veth1
ip -n kind-worker route add 10.244.1.2/32 dev veth1
ip -n pod1 link set lo up
ip -n pod1 link set eth0 up
ip -n pod1 addr add 10.244.1.2/24 dev eth0
ip -n pod1 route add default via 10.244.1.1

ip netns add pod2
ip -n kind-worker2 link add veth2 type veth peer name eth0 netns pod2
ip -n kind-worker2 link set veth2 up
ip -n kind-worker2 addr add 10.244.2.1/32 dev veth2
ip -n kind-worker2 route add 10.244.2.2/32 dev veth2
ip -n pod2 link set lo up
ip -n pod2 link set eth0 up
ip -n pod2 addr add 10.244.2.2/24 dev eth0
ip -n pod2 route add default via 10.244.2.1

ip -n kind-worker route add 10.244.2.0/24 via 172.18.0.3
ip -n kind-worker2 route add 10.244.1.0/24 via 172.18.0.2
