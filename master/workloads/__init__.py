"""The workload controllers' decisions (ReplicaSets, Deployments, owners): pure, objects in, plans out."""
