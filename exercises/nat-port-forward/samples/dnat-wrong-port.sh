# The port forward keeps the port: 8080 in the container, where nothing listens (the server is on 80).
ip netns add container1
ip link add veth1 type veth peer name ceth1 netns container1
ip link set veth1 up
ip addr add 172.16.0.1/24 dev veth1
ip netns exec container1 ip link set ceth1 up
ip netns exec container1 ip addr add 172.16.0.2/24 dev ceth1
ip netns exec container1 ip route add default via 172.16.0.1
sysctl -w net.ipv4.ip_forward=1
nft add table ip nat
nft add chain ip nat postrouting '{ type nat hook postrouting priority srcnat; }'
nft add rule ip nat postrouting ip saddr 172.16.0.0/24 oifname eth0 masquerade
nft add chain ip nat prerouting '{ type nat hook prerouting priority dstnat; }'
nft add rule ip nat prerouting iifname eth0 tcp dport 8080 dnat to 172.16.0.2:8080
