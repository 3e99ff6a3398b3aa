//go:build !linux

package kubevirtsim

import "syscall"

// childProcAttr has nothing to add where the kernel cannot tie the controller's life to its parent's.
func childProcAttr() *syscall.SysProcAttr { return nil }
