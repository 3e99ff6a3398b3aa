package kubevirtsim

// AcquireController is acquireController, for tests of KubeVirt's VM controller on its own, without the
// simulator's node agent.
var AcquireController = acquireController
