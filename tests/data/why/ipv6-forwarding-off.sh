# IPv6 only. ns1 and ns2 talk through router, which does not forward IPv6: its per-device
# switch is on, but only net.ipv6.conf.all.forwarding makes Linux forward.
ip netns add ns1
ip netns add router
ip netns add ns2
ip link add v1 netns ns1 type veth peer name r1 netns router
ip link add v2 netns ns2 type veth peer name r2 netns router
ip -n ns1 -6 addr add 2001:db8:1::2/64 dev v1 nodad
ip -n router -6 addr add 2001:db8:1::1/64 dev r1 nodad
ip -n router -6 addr add 2001:db8:2::1/64 dev r2 nodad
ip -n ns2 -6 addr add 2001:db8:2::2/64 dev v2 nodad
for ns in ns1 router ns2; do for dev in $(ip -n $ns -o link | awk -F': ' '{print $2}' | cut -d@ -f1); do ip -n $ns link set $dev up; done; done
ip -n ns1 -6 route add default via 2001:db8:1::1
ip -n ns2 -6 route add default via 2001:db8:2::1
ip netns exec router sysctl -qw net.ipv6.conf.r1.forwarding=1
