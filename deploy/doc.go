// Package deploy holds no code: its tests check the deployment files
// beside it. The systemd units of deploy/systemd are checked here (their
// hardening, users and writable paths, then systemd-analyze verify and
// security); the Helm chart of deploy/helm is linted, rendered and checked
// by the nested module tools/helm, which scripts/test runs, so that helm and
// the Kubernetes modules stay out of metertrust's go.mod (decision 025).
package deploy
