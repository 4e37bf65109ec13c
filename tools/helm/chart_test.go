package helm

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// chart is the chart's directory.
var chart = filepath.Join("..", "..", "deploy", "helm", "metertrust")

// helmBin is the helm command: $METERTRUST_HELM, or built by TestMain from
// this module's requirements.
var helmBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		helmBin = os.Getenv("METERTRUST_HELM")
		if helmBin == "" {
			dir, err := os.MkdirTemp("", "metertrust-helm")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			helmBin = filepath.Join(dir, "helm")
			cmd := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v4/cmd/helm")
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building helm:", err)
				return 1
			}
		}
		return m.Run()
	}())
}

func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helmBin, args...)
	// No repository configuration, cache or plugins of the user's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// valueSets are the values the chart is checked with: its defaults, and
// every optional part on.
var valueSets = map[string][]string{
	"defaults": nil,
	"full":     {filepath.Join("testdata", "full.yaml")},
}

func TestLint(t *testing.T) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chart}
			for _, f := range files {
				args = append(args, "--values", f)
			}
			out := helm(t, args...)
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

const release = "mt"

func render(t *testing.T, files ...string) *manifests {
	t.Helper()
	args := []string{"template", release, chart, "--namespace", "metertrust"}
	for _, f := range files {
		args = append(args, "--values", f)
	}
	m, err := parse(helm(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// values reads the chart's values.yaml with files over it, as helm merges
// them (maps merged key by key, anything else replaced).
func values(t *testing.T, files ...string) map[string]any {
	t.Helper()
	var v map[string]any
	for _, f := range append([]string{filepath.Join(chart, "values.yaml")}, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var over map[string]any
		if err := yaml.Unmarshal(b, &over); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		v = mergeValues(v, over)
	}
	return v
}

func mergeValues(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		dm, dok := dst[k].(map[string]any)
		sm, sok := sv.(map[string]any)
		if dok && sok {
			dst[k] = mergeValues(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// get reads a value by its dotted path; decoded into T through JSON.
func get[T any](t *testing.T, v map[string]any, path string) T {
	t.Helper()
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("values: %s: not a map at %s", path, k)
		}
		cur = m[k]
	}
	var out T
	b, _ := json.Marshal(cur)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("values: %s: %v", path, err)
	}
	return out
}

// wantSecrets is, per service, what it may read of Secrets: its own keys
// and nothing else. The router: its DCCKI TLS key, its CSP client key, the
// ACB key-agreement key and, when configured, the TCoS signing key; the
// repository: no key at all; the operator: its TLS key; the CA: its TLS
// key and the PIN of its token; each its own PostgreSQL password.
func wantSecrets(t *testing.T, v map[string]any) map[string][]string {
	s := func(path string) string { return get[string](t, v, path) }
	pgEnv := func(svc string) string {
		return "env:" + s("postgresql.existingSecret") + "/" + s(svc+".postgresql.passwordKey")
	}
	tls := func(secret string) []string { return []string{secret + "/tls.crt", secret + "/tls.key"} }
	var pgCA []string
	if c := s("postgresql.caSecret"); c != "" {
		pgCA = []string{c + "/ca.crt"}
	}
	operators := s("operators.existingSecret") + "/operators.json"
	router := slices.Concat(tls(s("router.tlsSecret")), []string{s("router.keysSecret") + "/acb-ka.key", pgEnv("router")}, pgCA)
	if s("router.config.tcosEUI") != "" {
		router = append(router, s("router.keysSecret")+"/tcos-ds.key")
	}
	if c := s("router.csp.tlsSecret"); c != "" {
		router = append(router, slices.Concat([]string{c + "/ca.crt"}, tls(c))...)
	}
	want := map[string][]string{
		"router":     router,
		"repository": slices.Concat([]string{operators, pgEnv("repository")}, pgCA),
		"operator":   slices.Concat(tls(s("operator.tlsSecret")), []string{operators, pgEnv("operator")}, pgCA),
		"ca":         slices.Concat(tls(s("ca.tlsSecret")), []string{operators, s("ca.pkcs11.pinSecret") + "/pin", pgEnv("ca")}, pgCA),
	}
	if get[bool](t, v, "fleet.enabled") {
		want["fleet"] = slices.Concat([]string{s("fleet.tlsSecret") + "/ca.crt"}, tls(s("fleet.tlsSecret")))
	}
	return want
}

// wantFlows is, per service, what its NetworkPolicy must allow, exactly:
// callers to the router, the repository and the operator UI; the CA's own
// client pods to the CA; the router to the repository, to the CSP and to
// the fleet; every service but the fleet to PostgreSQL; the CA to its HSM;
// the scraper to every metrics port; every pod to DNS.
func wantFlows(t *testing.T, v map[string]any) map[string][]flow {
	peers := func(path string) []netv1.NetworkPolicyPeer { return get[[]netv1.NetworkPolicyPeer](t, v, path) }
	port := func(path string) string { return fmt.Sprintf("TCP/%d", get[int](t, v, path)) }
	to := func(dir string, ps []netv1.NetworkPolicyPeer, ports ...string) []flow {
		var fs []flow
		for _, p := range ps {
			for _, pt := range ports {
				fs = append(fs, flow{dir, peerKey(p), pt})
			}
		}
		return fs
	}
	pods := func(c string) []netv1.NetworkPolicyPeer { return []netv1.NetworkPolicyPeer{podPeer(release, c)} }
	dns := to("out", peers("networkPolicy.dnsPeers"), "UDP/53", "TCP/53")
	pg := to("out", peers("postgresql.networkPeers"), port("postgresql.port"))
	scraped := func(svc string) []flow { return to("in", peers("metrics.scraperPeers"), port(svc+".metricsPort")) }
	var csp []string
	for _, p := range get[[]int](t, v, "router.csp.ports") {
		csp = append(csp, fmt.Sprintf("TCP/%d", p))
	}
	fleet := get[bool](t, v, "fleet.enabled")
	want := map[string][]flow{
		"router": slices.Concat(
			to("in", peers("router.callerPeers"), port("router.port")), scraped("router"), dns, pg,
			to("out", pods("repository"), port("repository.port")),
			to("out", peers("router.csp.networkPeers"), csp...)),
		"repository": slices.Concat(
			to("in", peers("repository.callerPeers"), port("repository.port")),
			to("in", pods("router"), port("repository.port")), scraped("repository"), dns, pg),
		"operator": slices.Concat(
			to("in", peers("operator.callerPeers"), port("operator.port")), scraped("operator"), dns, pg),
		"ca": slices.Concat(
			to("in", []netv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: get[map[string]string](t, v, "ca.clientPodLabels")}}}, port("ca.port")),
			scraped("ca"), dns, pg),
	}
	var hsm []string
	for _, p := range get[[]int](t, v, "ca.pkcs11.ports") {
		hsm = append(hsm, fmt.Sprintf("TCP/%d", p))
	}
	want["ca"] = append(want["ca"], to("out", peers("ca.pkcs11.networkPeers"), hsm...)...)
	if fleet {
		want["router"] = append(want["router"], to("out", pods("fleet"), port("fleet.port"))...)
		want["fleet"] = slices.Concat(to("in", pods("router"), port("fleet.port")), scraped("fleet"), dns)
	}
	return want
}

func report(t *testing.T, what string, bad []string) {
	t.Helper()
	for _, b := range bad {
		t.Errorf("%s: %s", what, b)
	}
}

// TestManifests renders the chart with each set of values and checks the
// manifests.
func TestManifests(t *testing.T) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			m := render(t, files...)
			v := values(t, files...)
			if len(m.other) > 0 {
				t.Errorf("unexpected kinds: %v", m.other)
			}
			report(t, "pods", checkPods(m))
			report(t, "ConfigMaps", checkConfigMaps(m))
			report(t, "mounts", checkMounts(m, wantSecrets(t, v)))
			report(t, "NetworkPolicies", checkPolicies(m, wantFlows(t, v)))

			replicas := map[string]int32{}
			for _, p := range m.pods() {
				replicas[p.component] = p.replicas
			}
			if replicas["router"] < 2 {
				t.Errorf("router: %d replicas, want several", replicas["router"])
			}
			if replicas["ca"] != 1 {
				t.Errorf("ca: %d replicas, want 1", replicas["ca"])
			}
			for _, d := range m.deployments {
				if d.Spec.Template.Labels[componentLabel] == "ca" && d.Spec.Strategy.Type != "Recreate" {
					t.Errorf("ca: strategy %q: a rollout would run two CAs at once", d.Spec.Strategy.Type)
				}
			}
			_, fleet := replicas["fleet"]
			if fleet != get[bool](t, v, "fleet.enabled") {
				t.Errorf("fleet rendered %v, enabled %v", fleet, get[bool](t, v, "fleet.enabled"))
			}

			// Each service's configuration: metrics on every interface at
			// the annotated port, a store DSN without a password.
			for _, svc := range []string{"router", "repository", "operator", "ca", "fleet"} {
				if svc == "fleet" && !fleet {
					continue
				}
				cfg, err := configOf(m, release+"-"+svc, svc+".json")
				if err != nil {
					t.Error(err)
					continue
				}
				if got, want := cfg["metricsListen"], fmt.Sprintf("0.0.0.0:%d", get[int](t, v, svc+".metricsPort")); got != want {
					t.Errorf("%s: metricsListen %v, want %s", svc, got, want)
				}
				if got, want := cfg["listen"], fmt.Sprintf("0.0.0.0:%d", get[int](t, v, svc+".port")); got != want {
					t.Errorf("%s: listen %v, want %s", svc, got, want)
				}
				if dsn, ok := cfg["store"].(string); ok && !strings.HasPrefix(dsn, "postgres://"+get[string](t, v, svc+".postgresql.user")+"@") {
					t.Errorf("%s: store %q, want the service's own user and no password", svc, dsn)
				}
			}
		})
	}
}

// TestChecksCatch shows the checks find what they look for: values that
// would put secrets into ConfigMaps, and renderings changed by hand.
func TestChecksCatch(t *testing.T) {
	t.Run("secrets in values", func(t *testing.T) {
		m := render(t, filepath.Join("testdata", "leaky.yaml"))
		bad := strings.Join(checkConfigMaps(m), "\n")
		for _, want := range []string{
			"ConfigMap mt-router, router.json: a private key",
			"ConfigMap mt-operator, operator.json: a password hash",
			"ConfigMap mt-operator, operator.json: a token or its digest",
		} {
			if !strings.Contains(bad, want) {
				t.Errorf("not found: %q in\n%s", want, bad)
			}
		}
		// The chart sets the store itself: the DSN with a password given in
		// the values does not reach the ConfigMap.
		if strings.Contains(bad, "mt-router, router.json: a DSN with a password") {
			t.Errorf("the router's store DSN from the values was rendered:\n%s", bad)
		}
	})

	base := func(t *testing.T) (*manifests, map[string]any) {
		return render(t, valueSets["full"]...), values(t, valueSets["full"]...)
	}
	component := func(m *manifests, c string) *corev1.PodSpec {
		for i := range m.deployments {
			if m.deployments[i].Spec.Template.Labels[componentLabel] == c {
				return &m.deployments[i].Spec.Template.Spec
			}
		}
		panic("no " + c)
	}
	policy := func(m *manifests, c string) *netv1.NetworkPolicy {
		for i := range m.policies {
			if m.policies[i].Spec.PodSelector.MatchLabels[componentLabel] == c {
				return &m.policies[i]
			}
		}
		panic("no policy for " + c)
	}
	cases := []struct {
		name   string
		change func(m *manifests)
		check  func(t *testing.T, m *manifests, v map[string]any) []string
		want   string
	}{
		{"no readiness probe", func(m *manifests) { component(m, "router").Containers[0].ReadinessProbe = nil },
			func(t *testing.T, m *manifests, v map[string]any) []string { return checkPods(m) }, "router/router: no readiness probe"},
		{"no memory limit", func(m *manifests) {
			delete(component(m, "operator").Containers[0].Resources.Limits, corev1.ResourceMemory)
		},
			func(t *testing.T, m *manifests, v map[string]any) []string { return checkPods(m) }, "operator/operator: no memory limit"},
		{"token store on the router", func(m *manifests) {
			spec := component(m, "router")
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "token", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "metertrust-ca-token"}}})
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkMounts(m, wantSecrets(t, v)) },
			"router mounts storage [token]: only the CA holds a key store"},
		{"the PIN on the operator", func(m *manifests) {
			spec := component(m, "operator")
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "pin", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "metertrust-ca-pin"}}})
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkMounts(m, wantSecrets(t, v)) },
			"operator reads the secrets ["},
		{"the CA reachable by anyone", func(m *manifests) {
			np := policy(m, "ca")
			np.Spec.Ingress = append(np.Spec.Ingress, netv1.NetworkPolicyIngressRule{})
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkPolicies(m, wantFlows(t, v)) },
			"ca: allows in * *"},
		{"the CA calling out", func(m *manifests) {
			np := policy(m, "ca")
			np.Spec.Egress = append(np.Spec.Egress, netv1.NetworkPolicyEgressRule{To: []netv1.NetworkPolicyPeer{podPeer(release, "repository")}})
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkPolicies(m, wantFlows(t, v)) },
			`ca: allows out {"podSelector":{"matchLabels":{"app.kubernetes.io/component":"repository"`},
		{"router without its repository", func(m *manifests) {
			np := policy(m, "router")
			np.Spec.Egress = slices.DeleteFunc(np.Spec.Egress, func(r netv1.NetworkPolicyEgressRule) bool {
				return len(r.To) == 1 && r.To[0].PodSelector != nil && r.To[0].PodSelector.MatchLabels[componentLabel] == "repository"
			})
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkPolicies(m, wantFlows(t, v)) },
			"router: does not allow out"},
		{"ingress only", func(m *manifests) {
			policy(m, "repository").Spec.PolicyTypes = []netv1.PolicyType{netv1.PolicyTypeIngress}
		}, func(t *testing.T, m *manifests, v map[string]any) []string { return checkPolicies(m, wantFlows(t, v)) },
			"repository: policy mt-repository does not limit both directions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, v := base(t)
			if bad := c.check(t, m, v); len(bad) > 0 {
				t.Fatalf("before the change: %v", bad)
			}
			c.change(m)
			bad := strings.Join(c.check(t, m, v), "\n")
			if !strings.Contains(bad, c.want) {
				t.Errorf("want %q among:\n%s", c.want, bad)
			}
		})
	}
}
