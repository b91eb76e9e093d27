"""The node agent's kubelet: registers the node, runs the pods bound to it through CRI.

- `agent`: `NodeAgent` (the composition) and `run_agent` (the `timonel agent` process).
- `node`: the Node object, its status and its Lease.
- `podworkers` / `podsync`: one worker per pod reconciling the pod with the runtime.
- `actions`, `status`, `containers`, `env`, `dns`: pure decisions (what to run, the pod's
  status, the CRI configs, the environment, DNS and /etc/hosts).
- `volumes`, `images`, `probes`, `handlers`, `backoff`, `runtimestate`: the parts.
"""
