# ns1 and ns2 talk through router, which does not forward (ip_forward=0).
ip netns add ns1
ip netns add router
ip netns add ns2
ip link add v1 netns ns1 type veth peer name r1 netns router
ip link add v2 netns ns2 type veth peer name r2 netns router
ip -n ns1 addr add 10.0.1.2/24 dev v1
ip -n router addr add 10.0.1.1/24 dev r1
ip -n router addr add 10.0.2.1/24 dev r2
ip -n ns2 addr add 10.0.2.2/24 dev v2
for ns in ns1 router ns2; do for dev in $(ip -n $ns -o link | awk -F': ' '{print $2}' | cut -d@ -f1); do ip -n $ns link set $dev up; done; done
ip -n ns1 route add default via 10.0.1.1
ip -n ns2 route add default via 10.0.2.1
ip netns exec router sysctl -qw net.ipv4.ip_forward=0
