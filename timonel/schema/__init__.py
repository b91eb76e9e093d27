"""The Kubernetes 1.32 OpenAPI definitions (from the `kubernetes-validate` package):
type navigation for patches and validation, and the OpenAPI v3 documents served to clients."""
