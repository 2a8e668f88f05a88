# A namespace made by `unshare --net` (as a container runtime does), named by
# its process: lo is down, so nothing in it can reach even 127.0.0.1.
unshare --net sleep 600 &
echo $! > "$OUT/pid"
