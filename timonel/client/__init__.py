"""The async Kubernetes client every component uses to reach the cluster: a REST client
over a transport seam (HTTPS, or in-process through the API server's full request path),
informers, a work queue, leader election and an event recorder."""
