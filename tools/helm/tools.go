//go:build tools

package helm

// The helm command, built by the test (and by scripts/test) from this
// module's requirements.
import _ "helm.sh/helm/v4/cmd/helm"
