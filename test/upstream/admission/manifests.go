package admission

import (
	"bytes"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	v1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
	operatorutil "kubevirt.io/kubevirt/pkg/virt-operator/util"
)

// DefaultNamespace is where KubeVirt is installed, as in its release manifests; the cluster config reads the KubeVirt
// CR from it and the service accounts whose requests the webhooks trust live in it.
const DefaultNamespace = "kubevirt"

// Manifests are the objects an API server needs before Serve's webhooks can answer, in the order to create them.
type Manifests struct {
	// CRDs the webhook server needs beyond the ones the tests install: the KubeVirt CR's, which the cluster config
	// reads (components.NewKubeVirtCrd, as virt-operator installs it).
	CRDs []*extv1.CustomResourceDefinition
	// Namespace is KubeVirt's install namespace.
	Namespace *corev1.Namespace
	// KubeVirt is the default KubeVirt CR, with the status virt-operator gives it once KubeVirt is installed. The
	// status subresource drops it on create: whoever creates the CR must write it after, because the cluster config
	// ignores a KubeVirt CR without status.phase and takes the default architecture from status
	// (pkg/virt-config/configuration.go, GetConfigFromKubeVirtCR and setConfigFromKubeVirt, v1.8.0).
	KubeVirt *v1.KubeVirt
	// Mutating and Validating are virt-api's webhook configurations as virt-operator generates them, keeping only the
	// webhooks this package serves. Their clientConfig names virt-api's Service; the caller points them at Serve's
	// address (envtest's WebhookInstallOptions does).
	Mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	Validating *admissionregistrationv1.ValidatingWebhookConfiguration
}

// NewManifests returns the manifests for KubeVirt installed in namespace, with the feature gates listed in its
// KubeVirt CR.
func NewManifests(namespace string, featureGates []string) (*Manifests, error) {
	kvCRD, err := components.NewKubeVirtCrd()
	if err != nil {
		return nil, fmt.Errorf("generating the KubeVirt CRD: %w", err)
	}
	m := &Manifests{
		CRDs: []*extv1.CustomResourceDefinition{kvCRD},
		Namespace: &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: namespace},
		},
		KubeVirt:   defaultKubeVirt(namespace, featureGates),
		Mutating:   components.NewVirtAPIMutatingWebhookConfiguration(namespace),
		Validating: components.NewVirtAPIValidatingWebhookConfiguration(namespace),
	}
	served := servedPaths()
	var mutating []admissionregistrationv1.MutatingWebhook
	for _, w := range m.Mutating.Webhooks {
		if served[webhookPath(w.ClientConfig)] {
			mutating = append(mutating, w)
		}
	}
	m.Mutating.Webhooks = mutating
	var validating []admissionregistrationv1.ValidatingWebhook
	for _, w := range m.Validating.Webhooks {
		if served[webhookPath(w.ClientConfig)] {
			validating = append(validating, w)
		}
	}
	m.Validating.Webhooks = validating
	return m, nil
}

func webhookPath(cc admissionregistrationv1.WebhookClientConfig) string {
	if cc.Service == nil || cc.Service.Path == nil {
		return ""
	}
	return *cc.Service.Path
}

// defaultKubeVirt is KubeVirt's release CR, manifests/generated/kubevirt-cr.yaml.in (v1.8.0), as `kubectl create -f
// kubevirt-cr.yaml` installs it: no configuration beyond the feature gates. Its status is what virt-operator
// writes (pkg/virt-operator/kubevirt.go, syncDeployment): the default architecture, its own GOARCH, and the phase
// Deployed once every component is ready.
func defaultKubeVirt(namespace string, featureGates []string) *v1.KubeVirt {
	if featureGates == nil {
		featureGates = []string{} // the template writes `featureGates: []`
	}
	kv := &v1.KubeVirt{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "KubeVirt"},
		ObjectMeta: metav1.ObjectMeta{Name: "kubevirt", Namespace: namespace},
		Spec: v1.KubeVirtSpec{
			CertificateRotationStrategy: v1.KubeVirtCertificateRotateStrategy{},
			Configuration: v1.KubeVirtConfiguration{
				DeveloperConfiguration: &v1.DeveloperConfiguration{FeatureGates: featureGates},
				ImagePullPolicy:        corev1.PullIfNotPresent,
			},
			CustomizeComponents:    v1.CustomizeComponents{},
			ImagePullPolicy:        corev1.PullIfNotPresent,
			WorkloadUpdateStrategy: v1.KubeVirtWorkloadUpdateStrategy{},
		},
	}
	operatorutil.SetDefaultArchitecture(kv)
	kv.Status.Phase = v1.KubeVirtPhaseDeployed
	return kv
}

// YAML renders the manifests as one YAML stream, one object per document, in creation order.
func (m *Manifests) YAML() ([]byte, error) {
	objs := make([]runtime.Object, 0, len(m.CRDs)+4)
	for _, crd := range m.CRDs {
		objs = append(objs, crd)
	}
	objs = append(objs, m.Namespace, m.KubeVirt, m.Mutating, m.Validating)
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("rendering %T: %w", o, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
