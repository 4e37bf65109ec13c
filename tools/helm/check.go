package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// componentLabel is the label naming a pod's service.
const componentLabel = "app.kubernetes.io/component"

// manifests are the objects of a rendering, by kind.
type manifests struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	configMaps   []corev1.ConfigMap
	secrets      []corev1.Secret
	services     []corev1.Service
	policies     []netv1.NetworkPolicy
	// other counts the objects of any other kind, by kind.
	other map[string]int
}

// parse reads helm template's output: YAML documents separated by "---".
// Each is decoded strictly into its kind's type, so that a field the
// Kubernetes API does not know (a typo in a template) is an error.
func parse(out []byte) (*manifests, error) {
	m := &manifests{other: map[string]int{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var err error
		switch meta.Kind {
		case "Deployment":
			err = decode(doc, &m.deployments)
		case "StatefulSet":
			err = decode(doc, &m.statefulSets)
		case "ConfigMap":
			err = decode(doc, &m.configMaps)
		case "Secret":
			err = decode(doc, &m.secrets)
		case "Service":
			err = decode(doc, &m.services)
		case "NetworkPolicy":
			err = decode(doc, &m.policies)
		case "":
			err = fmt.Errorf("no kind")
		default:
			m.other[meta.Kind]++
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, meta.Kind, err)
		}
	}
	return m, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func decode[T any](doc string, into *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict([]byte(doc), &v); err != nil {
		return err
	}
	*into = append(*into, v)
	return nil
}

// pod is a workload's pod template, named by its service.
type pod struct {
	component string
	replicas  int32
	spec      corev1.PodTemplateSpec
}

func (m *manifests) pods() []pod {
	var ps []pod
	for _, d := range m.deployments {
		ps = append(ps, pod{d.Spec.Template.Labels[componentLabel], ptrOr(d.Spec.Replicas, 1), d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		ps = append(ps, pod{s.Spec.Template.Labels[componentLabel], ptrOr(s.Spec.Replicas, 1), s.Spec.Template})
	}
	return ps
}

func ptrOr[T any](p *T, v T) T {
	if p == nil {
		return v
	}
	return *p
}

// checkPods reports each container of a pod template lacking a liveness or
// readiness probe, a CPU or memory limit, or the restrictions every
// metertrust container runs under; and each pod whose metrics port is not
// annotated for scraping.
func checkPods(m *manifests) []string {
	var bad []string
	for _, p := range m.pods() {
		spec := p.spec.Spec
		if len(spec.InitContainers) > 0 {
			bad = append(bad, fmt.Sprintf("%s: init containers (each needs the same checks)", p.component))
		}
		for _, c := range spec.Containers {
			where := p.component + "/" + c.Name
			if c.LivenessProbe == nil {
				bad = append(bad, where+": no liveness probe")
			}
			if c.ReadinessProbe == nil {
				bad = append(bad, where+": no readiness probe")
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
					bad = append(bad, fmt.Sprintf("%s: no %s limit", where, r))
				}
			}
			sc := c.SecurityContext
			if sc == nil || !ptrOr(sc.ReadOnlyRootFilesystem, false) || ptrOr(sc.AllowPrivilegeEscalation, true) || ptrOr(sc.Privileged, false) {
				bad = append(bad, where+": not read-only root, or may escalate privileges")
			}
			var metrics int32
			for _, port := range c.Ports {
				if port.Name == "metrics" {
					metrics = port.ContainerPort
				}
			}
			a := p.spec.Annotations
			if metrics == 0 || a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != fmt.Sprint(metrics) {
				bad = append(bad, fmt.Sprintf("%s: metrics port %d not annotated for scraping (%v)", where, metrics, a))
			}
		}
		if psc := spec.SecurityContext; psc == nil || !ptrOr(psc.RunAsNonRoot, false) {
			bad = append(bad, p.component+": may run as root")
		}
		if ptrOr(spec.AutomountServiceAccountToken, true) {
			bad = append(bad, p.component+": mounts a service account token")
		}
	}
	return bad
}

// secretPatterns are what no ConfigMap may hold.
var secretPatterns = []struct {
	what string
	re   *regexp.Regexp
}{
	{"a private key", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)},
	{"a password", regexp.MustCompile(`(?i)passw(or)?d`)},
	{"a DSN with a password", regexp.MustCompile(`(?i)postgres(ql)?://[^/@\s"]*:[^/@\s"]*@`)},
	{"a password hash", regexp.MustCompile(`(?i)argon2id|\$2[aby]\$|scrypt`)},
	{"a token or its digest", regexp.MustCompile(`(?i)token_?sha256|bearer\s|"token"\s*:`)},
	{"a PIN", regexp.MustCompile(`(?i)pin-value`)},
}

// checkConfigMaps reports each ConfigMap value holding a secret, and each
// rendered Secret (the chart makes none: the operator does).
func checkConfigMaps(m *manifests) []string {
	var bad []string
	for _, cm := range m.configMaps {
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			for _, p := range secretPatterns {
				if p.re.MatchString(cm.Data[k]) {
					bad = append(bad, fmt.Sprintf("ConfigMap %s, %s: %s", cm.Name, k, p.what))
				}
			}
		}
		if len(cm.BinaryData) > 0 {
			bad = append(bad, fmt.Sprintf("ConfigMap %s: binary data", cm.Name))
		}
	}
	for _, s := range m.secrets {
		bad = append(bad, fmt.Sprintf("Secret %s rendered by the chart: secrets are made by the operator, not from values", s.Name))
	}
	return bad
}

// secretUse is what a pod reads of Secrets: "secret/key" for each item of
// a mounted or projected secret, "env:secret/key" for each environment
// variable from one, "secret/*" for a whole secret.
func secretUse(spec corev1.PodSpec) []string {
	var use []string
	items := func(name string, its []corev1.KeyToPath) {
		if len(its) == 0 {
			use = append(use, name+"/*")
		}
		for _, it := range its {
			use = append(use, name+"/"+it.Key)
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			items(v.Secret.SecretName, v.Secret.Items)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					items(s.Secret.Name, s.Secret.Items)
				}
			}
		}
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				use = append(use, "env:"+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				use = append(use, "env:"+e.SecretRef.Name+"/*")
			}
		}
	}
	slices.Sort(use)
	return use
}

// storageVolumes names a pod's volumes that are storage (a claim, a host
// path, a CSI or image volume...): anything but a ConfigMap, a Secret, a
// projection and an emptyDir.
func storageVolumes(spec corev1.PodSpec) []string {
	var names []string
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil && v.Secret == nil && v.EmptyDir == nil && v.Projected == nil {
			names = append(names, v.Name)
		}
	}
	return names
}

// checkMounts reports each pod reading Secrets other than exactly the
// items want gives its service, any pod but the CA's mounting storage (a
// key store, a PKCS#11 token or module), and a service other than the CA
// given the PKCS#11 module's configuration.
func checkMounts(m *manifests, want map[string][]string) []string {
	var bad []string
	seen := map[string]bool{}
	for _, p := range m.pods() {
		seen[p.component] = true
		got := secretUse(p.spec.Spec)
		w := slices.Sorted(slices.Values(want[p.component]))
		if !slices.Equal(got, w) {
			bad = append(bad, fmt.Sprintf("%s reads the secrets %v, want %v", p.component, got, w))
		}
		if p.component != "ca" {
			if s := storageVolumes(p.spec.Spec); len(s) > 0 {
				bad = append(bad, fmt.Sprintf("%s mounts storage %v: only the CA holds a key store", p.component, s))
			}
			for _, c := range p.spec.Spec.Containers {
				for _, e := range c.Env {
					if strings.Contains(e.Name, "SOFTHSM") || strings.Contains(e.Name, "PKCS11") || strings.Contains(e.Value, "pkcs11:") {
						bad = append(bad, fmt.Sprintf("%s: PKCS#11 environment %s", p.component, e.Name))
					}
				}
			}
		}
	}
	for _, c := range slices.Sorted(maps.Keys(want)) {
		if !seen[c] {
			bad = append(bad, c+": no pod")
		}
	}
	return bad
}

// flow is one allowed flow of a NetworkPolicy: direction, peer (its JSON)
// and port.
type flow struct {
	dir, peer, port string
}

func (f flow) String() string { return f.dir + " " + f.peer + " " + f.port }

// peerKey is a peer's identity in flows.
func peerKey(p netv1.NetworkPolicyPeer) string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// podPeer is the peer of a release's service's pods.
func podPeer(release, component string) netv1.NetworkPolicyPeer {
	return netv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
		"app.kubernetes.io/name": "metertrust", "app.kubernetes.io/instance": release, componentLabel: component,
	}}}
}

// flows lists what a policy allows. A rule without peers or without ports
// allows everyone or every port: it is reported as such ("*").
func flows(np netv1.NetworkPolicy) []flow {
	var fs []flow
	add := func(dir string, peers []netv1.NetworkPolicyPeer, ports []netv1.NetworkPolicyPort) {
		keys := []string{"*"}
		if len(peers) > 0 {
			keys = nil
			for _, p := range peers {
				keys = append(keys, peerKey(p))
			}
		}
		pk := []string{"*"}
		if len(ports) > 0 {
			pk = nil
			for _, p := range ports {
				proto := "TCP"
				if p.Protocol != nil {
					proto = string(*p.Protocol)
				}
				port := "*"
				if p.Port != nil {
					port = p.Port.String()
				}
				if p.EndPort != nil {
					port += fmt.Sprintf("-%d", *p.EndPort)
				}
				pk = append(pk, proto+"/"+port)
			}
		}
		for _, k := range keys {
			for _, p := range pk {
				fs = append(fs, flow{dir, k, p})
			}
		}
	}
	for _, r := range np.Spec.Ingress {
		add("in", r.From, r.Ports)
	}
	for _, r := range np.Spec.Egress {
		add("out", r.To, r.Ports)
	}
	return fs
}

// checkPolicies reports each service whose pods are not selected by
// exactly one NetworkPolicy limiting both directions, or whose policy
// allows flows other than exactly want's.
func checkPolicies(m *manifests, want map[string][]flow) []string {
	var bad []string
	for _, p := range m.pods() {
		var mine []netv1.NetworkPolicy
		for _, np := range m.policies {
			if selects(np.Spec.PodSelector.MatchLabels, p.spec.Labels) && len(np.Spec.PodSelector.MatchExpressions) == 0 {
				mine = append(mine, np)
			}
		}
		if len(mine) != 1 {
			bad = append(bad, fmt.Sprintf("%s: selected by %d NetworkPolicies, want 1", p.component, len(mine)))
			continue
		}
		np := mine[0]
		if !slices.Contains(np.Spec.PolicyTypes, netv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, netv1.PolicyTypeEgress) {
			bad = append(bad, fmt.Sprintf("%s: policy %s does not limit both directions (%v)", p.component, np.Name, np.Spec.PolicyTypes))
		}
		got := flowSet(flows(np))
		w := flowSet(want[p.component])
		for _, f := range got {
			if !slices.Contains(w, f) {
				bad = append(bad, fmt.Sprintf("%s: allows %s", p.component, f))
			}
		}
		for _, f := range w {
			if !slices.Contains(got, f) {
				bad = append(bad, fmt.Sprintf("%s: does not allow %s", p.component, f))
			}
		}
	}
	return bad
}

func flowSet(fs []flow) []string {
	var s []string
	for _, f := range fs {
		s = append(s, f.String())
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return true
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// configOf returns a service's configuration file from its ConfigMap.
func configOf(m *manifests, cmName, key string) (map[string]any, error) {
	for _, cm := range m.configMaps {
		if cm.Name == cmName {
			d := json.NewDecoder(bytes.NewReader([]byte(cm.Data[key])))
			d.UseNumber()
			var v map[string]any
			if err := d.Decode(&v); err != nil {
				return nil, fmt.Errorf("ConfigMap %s, %s: %w", cmName, key, err)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("no ConfigMap %s", cmName)
}
