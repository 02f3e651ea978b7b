// Package deploy holds no code: its tests check the deployment files beside it. They render
// the Kubernetes manifests of k8s/ with kustomize and decode every object strictly into the
// Kubernetes API types, parse the Prometheus rules and the Grafana dashboard of
// observability/, and load compose.yaml, so that a typo fails CI although this repository
// is never deployed from its tests.
package deploy
