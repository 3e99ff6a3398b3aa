// Package admission serves KubeVirt's own admission webhooks, virt-api's mutators and validators from
// kubevirt.io/kubevirt v1.8.0 (pkg/virt-api/webhooks), to a test API server, and generates the objects that API
// server needs for them: virt-api's webhook configurations as virt-operator generates them, the KubeVirt CRD and the
// default KubeVirt CR the cluster config is read from.
//
// It is KubeVirt's code, not a stand-in: the handlers are the same Serve* functions on the same paths that
// pkg/virt-api/api.go registers. What differs from a cluster is listed where it is done: the webhooks for kinds the
// tests do not install are not served, and informers for two such kinds are empty.
package admission
