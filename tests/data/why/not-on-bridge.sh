# Two containers on br0, but veth2 was never attached to the bridge.
ip link add br0 type bridge
ip link set br0 up
for i in 1 2; do
  ip netns add container$i
  ip link add veth$i type veth peer name ceth$i
  ip link set ceth$i netns container$i
  ip link set veth$i up
  ip -n container$i link set lo up
  ip -n container$i addr add 10.0.0.$((i + 1))/24 dev ceth$i
  ip -n container$i link set ceth$i up
done
ip link set veth1 master br0
