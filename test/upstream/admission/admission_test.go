package admission

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "kubevirt.io/api/core/v1"

	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
)

// TestManifestsServeWhatTheyRegister checks that the printed configurations and the handlers agree: every webhook
// kept has a handler, every handler is reached by a webhook, and the ones left out are those this package documents
// as left out (kinds the tests do not install).
func TestManifestsServeWhatTheyRegister(t *testing.T) {
	m, err := NewManifests(DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := servedPaths()
	reached := map[string]bool{}
	var kept []string
	for _, w := range m.Mutating.Webhooks {
		kept = append(kept, w.Name)
		reached[webhookPath(w.ClientConfig)] = true
	}
	for _, w := range m.Validating.Webhooks {
		kept = append(kept, w.Name)
		reached[webhookPath(w.ClientConfig)] = true
	}
	for p := range served {
		if !reached[p] {
			t.Errorf("handler for %s is reached by no webhook", p)
		}
	}
	for p := range reached {
		if !served[p] {
			t.Errorf("webhook path %s has no handler", p)
		}
	}

	var left []string
	for _, w := range components.NewVirtAPIMutatingWebhookConfiguration(DefaultNamespace).Webhooks {
		if !slices.Contains(kept, w.Name) {
			left = append(left, w.Name)
		}
	}
	for _, w := range components.NewVirtAPIValidatingWebhookConfiguration(DefaultNamespace).Webhooks {
		if !slices.Contains(kept, w.Name) {
			left = append(left, w.Name)
		}
	}
	slices.Sort(left)
	want := []string{
		"hotplug-pod-eviction-interceptor.kubevirt.io",
		"migration-policy-validator.kubevirt.io",
		"virt-launcher-eviction-interceptor.kubevirt.io",
		"virtualmachinebackup-validator.backup.kubevirt.io",
		"virtualmachinebackuptracker-validator.backup.kubevirt.io",
		"virtualmachineclones-mutator.kubevirt.io",
		"virtualmachineexport-validator.export.kubevirt.io",
		"virtualmachinepool-validator.kubevirt.io",
		"virtualmachinepreset-validator.kubevirt.io",
		"virtualmachinereplicaset-validator.kubevirt.io",
		"vm-clone-validator.kubevirt.io",
	}
	if !slices.Equal(left, want) {
		t.Errorf("webhooks left out:\n got %v\nwant %v", left, want)
	}
}

func TestDefaultKubeVirt(t *testing.T) {
	tests := []struct {
		name  string
		gates []string
		want  []string
	}{
		{"release CR", nil, []string{}},
		{"with gates", []string{"Snapshot", "Sidecar"}, []string{"Snapshot", "Sidecar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := defaultKubeVirt("ns", tt.gates)
			if kv.Namespace != "ns" || kv.Name != "kubevirt" {
				t.Errorf("name %s/%s", kv.Namespace, kv.Name)
			}
			if got := kv.Spec.Configuration.DeveloperConfiguration.FeatureGates; got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("feature gates %#v, want %#v", got, tt.want)
			}
			// What the cluster config needs from virt-operator's status (pkg/virt-config/configuration.go).
			if kv.Status.Phase != v1.KubeVirtPhaseDeployed || kv.Status.DefaultArchitecture != runtime.GOARCH {
				t.Errorf("status %+v", kv.Status)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	m, err := NewManifests(DefaultNamespace, []string{"Snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, doc := range strings.Split(string(b), "---\n")[1:] {
		for _, line := range strings.Split(doc, "\n") {
			if k, ok := strings.CutPrefix(line, "kind: "); ok {
				kinds = append(kinds, k)
			}
		}
	}
	want := []string{"CustomResourceDefinition", "Namespace", "KubeVirt", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
}

// TestHandlerPaths checks the path cleaning: envtest's URLs have two leading slashes, which ServeMux would redirect.
func TestHandlerPaths(t *testing.T) {
	h := (&Server{}).Handler()
	for _, path := range []string{ReadyPath, "/" + ReadyPath} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://webhooks"+path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://webhooks/no-such-webhook", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /no-such-webhook: %d", rec.Code)
	}
}
