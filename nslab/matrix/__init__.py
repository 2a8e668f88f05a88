"""The scenario suite on other kernels and userlands, in throwaway VMs."""
