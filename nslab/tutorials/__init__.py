"""The tutorials' labs: the catalog of final states, pod networks, CNI plugins."""
