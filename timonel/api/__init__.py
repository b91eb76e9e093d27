"""The Kubernetes object vocabulary shared by every component: objects, errors, validation."""
