"""Linux itself: namespaces, the sandbox, netlink, processes, and what the kernel reports."""
