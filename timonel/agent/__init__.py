"""The node agent: kubelet, proxy and DNS for one node."""
