"""The pod network between nodes: host-gw routes to every other node's podCIDR."""
