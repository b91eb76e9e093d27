"""The Kubernetes API server: authentication, admission, kind strategies, storage, watch."""
