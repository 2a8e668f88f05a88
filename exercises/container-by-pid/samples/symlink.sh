# The tutorial's symlink: it dies with the container process, so ns-7863 is not found after the script.
pid=$(cat /tmp/container.pid)
ln -s /proc/$pid/ns/net /run/netns/ns-7863
ip link add eth0-ns-7863 type veth peer name veth-ns-7863
ip link set eth0-ns-7863 netns ns-7863
ip netns exec ns-7863 ip link set dev eth0-ns-7863 down
ip netns exec ns-7863 ip link set dev eth0-ns-7863 name eth1
ip netns exec ns-7863 ip link set dev eth1 up
ip link set dev veth-ns-7863 up
ip netns exec ns-7863 ip addr add 192.168.100.2/24 dev eth1
ip addr add 192.168.100.1/24 dev veth-ns-7863
