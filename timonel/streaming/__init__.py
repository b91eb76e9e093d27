"""The streaming protocols behind `kubectl exec`, `attach`, `cp` and `port-forward`.

`channels` is the WebSocket channel protocol (v4/v5.channel.k8s.io), `spdy` the SPDY/3.1
framing and sessions kubectl falls back to and containerd's streaming server speaks, and
`upgrade` the HTTP/1.1 upgrade plumbing both the API server and the kubelet proxy through.
"""
