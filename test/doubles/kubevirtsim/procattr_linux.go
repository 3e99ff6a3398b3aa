package kubevirtsim

import "syscall"

// childProcAttr makes the kernel stop the controller when the process that started it dies without stopping it
// (a test binary killed at its timeout), so that no controller outlives its API server's tests.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
