"""The horizontal pod autoscaler's decisions (kube's pkg/controller/podautoscaler), pure:
`replicas` turns pod metrics into a replica proposal, `scaling` stabilizes and limits it."""
