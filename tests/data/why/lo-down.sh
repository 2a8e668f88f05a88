# A namespace made by `unshare --net` (as a container runtime does), named by
# its process: lo is down, so nothing in it can reach even 127.0.0.1.
unshare --net sleep 600 &
pid=$!
# wait (bounded) until it has its own network namespace
for i in $(seq 1000); do [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; done
[ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]
echo "$pid" > "$OUT/pid"
