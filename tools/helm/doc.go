// Package helm checks deploy/helm/metertrust, the Helm chart: its test
// lints the chart and renders it with helm (built from this module, v4,
// from the Go module proxy) and checks the rendered manifests: every pod
// has probes and resource limits, no ConfigMap holds a secret, only the CA
// mounts the key store, each service mounts only its own keys, and the
// NetworkPolicies allow exactly the flows of docs/operations.md.
//
// It is a module of its own so that helm and the Kubernetes modules never
// enter metertrust's go.mod (decision 025). scripts/test runs it.
package helm
