# A docker0-like bridge with three containers; container3 in its own subnet.
ip link add br0 type bridge
ip link set br0 up
ip addr add 172.16.0.1/24 dev br0
ip addr add 172.16.1.1/24 dev br0
for n in 1 2 3; do
    ip netns add container$n
    ip netns exec container$n ip link set lo up
    ip link add veth$n type veth peer name ceth$n
    ip link set ceth$n netns container$n
    [ $n = 2 ] || ip link set veth$n master br0
    ip link set veth$n up
    ip netns exec container$n ip link set ceth$n up
done
ip netns exec container1 ip addr add 172.16.0.2/24 dev ceth1
ip netns exec container2 ip addr add 172.16.0.3/24 dev ceth2
ip netns exec container3 ip addr add 172.16.1.2/24 dev ceth3
ip netns exec container1 ip route add default via 172.16.0.1
ip netns exec container2 ip route add default via 172.16.0.1
ip netns exec container3 ip route add default via 172.16.1.1
