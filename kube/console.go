package kube

import (
	"context"
	"fmt"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Console is what getconsole hands out: a password (vnc) or a token (direct), and when it expires.
type Console struct {
	Password string
	Token    string
	Expires  time.Time
}

// OpenConsole checks that the Instance's VM runs and mints a one-time console token for it in the tokens'
// namespace.
func (in Consoles) OpenConsole(ctx context.Context, id Identity, settings translate.ConsoleSettings) (Console, error) {
	if err := in.consoleReady(ctx, id); err != nil {
		return Console{}, err
	}
	token := consoletoken.Token{
		Mode:     settings.Mode,
		Target:   consoletoken.Target{Namespace: in.namespace, Name: id.Name, InstanceUUID: id.UUID},
		Lifetime: settings.Lifetime,
	}
	var out Console
	var name string
	var err error
	if settings.Mode == translate.ConsoleDirect {
		if out.Token, err = consoletoken.NewDirectToken(); err != nil {
			return Console{}, err
		}
		name = consoletoken.DirectSecretName(out.Token)
	} else {
		if out.Password, err = consoletoken.NewVNCPassword(); err != nil {
			return Console{}, err
		}
		token.Password = out.Password
	}
	secret := token.Secret(settings.Namespace, name)
	if err := in.client.Create(ctx, secret); err != nil {
		switch {
		case kerrors.IsNotFound(err):
			return Console{}, fmt.Errorf("namespace %s of the console tokens does not exist: apply manifests/extension-rbac (console-tokens.yaml makes it), or set the detail %s to the namespace the gateway reads (its --namespace)", settings.Namespace, translate.DetailConsoleNamespace)
		case kerrors.IsForbidden(err):
			return Console{}, fmt.Errorf("the kubeconfig's identity may not create console tokens (Secrets) in %s: apply manifests/extension-rbac/console-tokens.yaml (in the tokens' namespace): %w", settings.Namespace, err)
		}
		return Console{}, explain(err, "create the console token (a Secret) in "+settings.Namespace+" for the console gateway")
	}
	out.Expires = secret.CreationTimestamp.Add(settings.Lifetime)
	return out, nil
}

// consoleReady refuses a console for a VM that CloudStack does not manage, or that does not run.
func (in Consoles) consoleReady(ctx context.Context, id Identity) error {
	vm, err := in.get(ctx, id)
	if err != nil {
		return err
	}
	if vm == nil {
		return fmt.Errorf("VirtualMachine %s does not exist: the Instance has no console", in.ref(id.Name))
	}
	vmi, err := in.vmi(ctx, id.Name)
	if err != nil {
		return err
	}
	if vmi == nil || vmi.Status.Phase != kubevirtv1.Running {
		var phase string
		switch {
		case vmi == nil:
			phase = "no VirtualMachineInstance"
		case vmi.Status.Phase == "":
			phase = "VirtualMachineInstance not yet scheduled"
		default:
			phase = "VirtualMachineInstance phase " + string(vmi.Status.Phase)
		}
		return fmt.Errorf("VirtualMachine %s is not running (%s): start the Instance to open its console", in.ref(id.Name), phase)
	}
	return nil
}
