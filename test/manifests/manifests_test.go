// Package manifests checks that manifests/ renders with kustomize and that a real API server takes every object
// it renders, with strict field validation, as `kubectl apply -k` would.
package manifests

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/test/doubles/testenv"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// kustomize is pinned; `go run` builds it from the module proxy once and caches it.
const kustomize = "sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"

func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "run", kustomize, "build", filepath.Join("manifests", dir))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "kustomize build manifests/%s: %s", dir, stderr.String())
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
	return objs
}

func TestManifests(t *testing.T) {
	for _, dir := range []string{"reconciler", "extension-rbac", "console", "examples/namespace"} {
		assert.NotEmpty(t, render(t, dir), dir)
	}
	objs := render(t, "default")
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} {
		assert.NotZero(t, kinds[kind], "manifests/default has a %s", kind)
	}

	env := testenv.ForTest(t)
	// Namespaces first, as kubectl apply orders them.
	for _, pass := range []bool{true, false} {
		for _, o := range objs {
			if (o.GetKind() == "Namespace") != pass {
				continue
			}
			err := env.Client.Create(t.Context(), o, &client.CreateOptions{Raw: &metav1.CreateOptions{FieldValidation: "Strict"}})
			require.NoError(t, err, "%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}

	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		require.Len(t, containers, 1)
		c := containers[0].(map[string]any)
		sc := c["securityContext"].(map[string]any)
		assert.Equal(t, true, sc["readOnlyRootFilesystem"])
		assert.Equal(t, false, sc["allowPrivilegeEscalation"])
		assert.NotNil(t, c["livenessProbe"])
		assert.NotNil(t, c["readinessProbe"])
		assert.NotNil(t, c["resources"])
		podSC, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec", "securityContext")
		assert.Equal(t, true, podSC["runAsNonRoot"])
	}
	t.Run("console tokens' namespace", func(t *testing.T) { consoleTokensNamespaceHoldsNothingElse(t, env, objs) })
}

// The console gateway is network-exposed and may read and delete every Secret in the tokens' namespace, so that
// namespace holds nothing but the tokens and the grants on them, and the gateway reads no Secret elsewhere: not
// in cloudstack-kubevirt-system, where manifests/README.md keeps the extension's ServiceAccount token.
// Part of TestManifests, on the objects it created.
func consoleTokensNamespaceHoldsNothingElse(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured) {
	const system, tokens = "cloudstack-kubevirt-system", translate.DefaultConsoleNamespace
	for _, o := range objs {
		if o.GetNamespace() == tokens {
			assert.Contains(t, []string{"Role", "RoleBinding"}, o.GetKind(), "%s %s in the tokens' namespace", o.GetKind(), o.GetName())
		}
		if o.GetKind() == "Namespace" && o.GetName() == tokens {
			assert.Equal(t, "restricted", o.GetLabels()["pod-security.kubernetes.io/enforce"])
		}
	}

	const gateway, extension = "system:serviceaccount:" + system + ":cloudstack-kubevirt-console", "system:serviceaccount:" + system + ":cloudstack-extension"
	tests := []struct {
		user, namespace, verb string
		allowed               bool
	}{
		{gateway, tokens, "list", true},
		{gateway, tokens, "get", true},
		{gateway, tokens, "delete", true},
		{gateway, tokens, "create", false},
		{gateway, system, "get", false},
		{gateway, system, "list", false},
		{gateway, system, "delete", false},
		{extension, tokens, "create", true},
		{extension, tokens, "get", false},
		{extension, tokens, "list", false},
		{extension, system, "create", false},
	}
	for _, tt := range tests {
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               tt.user,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + system, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: tt.namespace, Verb: tt.verb, Resource: "secrets"},
			}}
			require.NoError(c, env.Client.Create(t.Context(), review))
			assert.Equal(c, tt.allowed, review.Status.Allowed, "%s may %s secrets in %s", tt.user, tt.verb, tt.namespace)
		}, 10*time.Second, 100*time.Millisecond)
	}
}
