// Package doubles holds, in its subpackages, the stand-ins for what the extension talks to, and the wiring that
// starts them. None of them is the product, and none may become part of it.
//
//   - testenv: a Kubernetes API server (envtest) with KubeVirt's, CDI's and Multus's CRDs and KubeVirt's own
//     admission webhooks, in place of a cluster.
//   - kubevirtsim: KubeVirt's own VM controller, and simulations of the rest of KubeVirt envtest cannot run.
//   - virtapisim: a stand-in for virt-api's subresources.kubevirt.io API, in front of envtest.
//   - cloudstacksim: CloudStack's management server as an Orchestrator extension sees it: the payloads it writes,
//     how it runs the executable and how it reads the answers.
//   - cmksim (a command): cmk and CloudStack's API layer, for hack/register.sh.
//   - fixture: what an operator prepares once per CloudStack host.
//   - fullfs: a small file system that fills up, for what a full disk does to the extension's files.
//
// Who may import them: tests, cmd/demo and hack/bench, which run the extension against these stand-ins. The
// product's binaries (cmd/extension, cmd/reconciler, cmd/console) and the packages they are built from (kube,
// translate) must not; TestProductImportsNoTestPackage holds them to it.
package doubles
