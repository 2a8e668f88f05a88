# Tries to plant files and namespaces in the host's /run/netns.
touch /run/netns/pwned
ip netns add pwned-ns
umount /run/netns
touch /run/netns/pwned-again
mount --bind /run /mnt && touch /mnt/netns/pwned-through-bind
ls -la /run/netns
