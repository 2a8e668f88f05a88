# The host (the namespace nslab why runs in) drops echo requests in its own input chain:
# the kernel's drop reason there is read too (its drops are not skipped as noise).
ip netns add c1
ip link add v1 type veth peer name eth0 netns c1
ip addr add 10.89.0.1/24 dev v1; ip link set v1 up
ip -n c1 addr add 10.89.0.2/24 dev eth0; ip -n c1 link set eth0 up
nft add table inet guard
nft add chain inet guard in '{ type filter hook input priority 0 ; }'
nft add rule inet guard in icmp type echo-request drop
