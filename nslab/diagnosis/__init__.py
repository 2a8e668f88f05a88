"""What the lab saw around a probe, and why a probe failed, from what the kernel showed."""
