ip netns add ns1
while :; do :; done
