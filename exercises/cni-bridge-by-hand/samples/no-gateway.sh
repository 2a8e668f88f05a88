# isGateway false: the bridge gets no address, so the host has no way into 10.1.2.0/24 (the containers still reach each other).
cat > /tmp/10-mynet.conf <<'CONF'
{
  "cniVersion": "0.4.0",
  "name": "mynet",
  "type": "bridge",
  "bridge": "cni0",
  "isGateway": false,
  "ipMasq": false,
  "ipam": {
    "type": "host-local",
    "subnet": "10.1.2.0/24",
    "dataDir": "/tmp/cni-ipam",
    "routes": [ { "dst": "0.0.0.0/0" } ]
  }
}
CONF
for c in container1 container2; do
  ip netns add $c
  CNI_COMMAND=ADD CNI_CONTAINERID=$c CNI_NETNS=/run/netns/$c CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    /usr/lib/cni/bridge < /tmp/10-mynet.conf
done
