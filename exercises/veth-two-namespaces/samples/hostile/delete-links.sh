# Tries to take the machine off the network: deletes every link it can name.
for dev in $(ls /sys/class/net) eth0 ens3 enp0s3 enp0s8 docker0; do
    ip link set "$dev" down
    ip link del "$dev"
done
ip link show
