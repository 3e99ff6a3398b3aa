package kube

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// A console token is a Secret in the tokens' namespace (console_namespace, which holds nothing else; the gateway
// runs elsewhere): getconsole creates it, the gateway consumes it
// (deletes it, guarded by its UID, so a token opens one session however many gateway replicas run) and sweeps it
// once expired. It names one VM. The extension may only create Secrets there; the gateway only reads and
// deletes them. That is the whole channel between the two: no new network path from the management server.
const (
	// LabelConsoleToken marks a console token; its value is the mode, translate.ConsoleVNC or ConsoleDirect.
	LabelConsoleToken = translate.Prefix + "console-token"

	consoleKeyNamespace = "namespace"
	consoleKeyName      = "name"
	consoleKeyUUID      = "instance-uuid"
	consoleKeyPassword  = "password" // vnc mode only; a direct token is never stored, only its hash (the name)
	consoleKeyLifetime  = "lifetime-seconds"

	vncTokenPrefix    = "console-vnc-"
	directTokenPrefix = "console-direct-"
)

// ConsoleTarget is the VM a console token opens.
type ConsoleTarget struct {
	Namespace, Name string
	InstanceUUID    string // "" skips the ownership check
}

func (t ConsoleTarget) String() string { return t.Namespace + "/" + t.Name }

// ConsoleToken is a console token as stored.
type ConsoleToken struct {
	Mode     string
	Target   ConsoleTarget
	Password string // vnc mode
	Lifetime time.Duration

	// Set by the API server.
	SecretName string
	UID        types.UID
	Created    time.Time
}

// ExpiresAt is when the token stops opening a console, by the API server's clock (creationTimestamp has
// second resolution, so a token lives up to a second less than its lifetime).
func (t ConsoleToken) ExpiresAt() time.Time { return t.Created.Add(t.Lifetime) }

// secret is the Secret that stores t; direct tokens are stored under name, the hash of the token.
func (t ConsoleToken) secret(namespace, name string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Labels:    map[string]string{LabelConsoleToken: t.Mode, translate.LabelManagedBy: translate.ManagedBy},
		},
		Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{
			consoleKeyNamespace: t.Target.Namespace,
			consoleKeyName:      t.Target.Name,
			consoleKeyUUID:      t.Target.InstanceUUID,
			consoleKeyLifetime:  strconv.Itoa(int(t.Lifetime / time.Second)),
		},
	}
	if name != "" {
		s.Name = name
	} else {
		s.GenerateName = vncTokenPrefix
	}
	if t.Password != "" {
		s.StringData[consoleKeyPassword] = t.Password
	}
	return s
}

// ConsoleTokenFromSecret reads a token the extension stored.
func ConsoleTokenFromSecret(s *corev1.Secret) (ConsoleToken, error) {
	t := ConsoleToken{
		Mode:       s.Labels[LabelConsoleToken],
		Target:     ConsoleTarget{Namespace: string(s.Data[consoleKeyNamespace]), Name: string(s.Data[consoleKeyName]), InstanceUUID: string(s.Data[consoleKeyUUID])},
		Password:   string(s.Data[consoleKeyPassword]),
		SecretName: s.Name,
		UID:        s.UID,
		Created:    s.CreationTimestamp.Time,
	}
	seconds, err := strconv.Atoi(string(s.Data[consoleKeyLifetime]))
	if err != nil || seconds <= 0 {
		return t, fmt.Errorf("console token %s/%s has no valid %s", s.Namespace, s.Name, consoleKeyLifetime)
	}
	t.Lifetime = time.Duration(seconds) * time.Second
	if t.Target.Namespace == "" || t.Target.Name == "" {
		return t, fmt.Errorf("console token %s/%s names no VM", s.Namespace, s.Name)
	}
	if t.Mode == translate.ConsoleVNC && t.Password == "" {
		return t, fmt.Errorf("console token %s/%s has no password", s.Namespace, s.Name)
	}
	return t, nil
}

// DirectTokenSecretName is the name of the Secret that stands for a direct token: a hash, so that reading the
// Secrets never yields a token that opens a console.
func DirectTokenSecretName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return directTokenPrefix + hex.EncodeToString(sum[:])
}

// vncPasswordAlphabet has 64 characters, so each random byte's low 6 bits pick one without bias, and none
// needs quoting anywhere CloudStack carries the password (JSON, URLs, its console proxy's encrypted token).
const vncPasswordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// VNCPasswordLength is all that counts: VNC authentication keys DES with the first 8 bytes of the password.
const VNCPasswordLength = 8

// NewVNCPassword returns 8 random characters (48 bits); each is good for one connection attempt within the
// token's lifetime.
func NewVNCPassword() (string, error) {
	b := make([]byte, VNCPasswordLength)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = vncPasswordAlphabet[b[i]&63]
	}
	return string(b), nil
}

// NewDirectToken returns 32 random bytes, base64url without padding.
func NewDirectToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Console is what getconsole hands out: a password (vnc) or a token (direct), and when it expires.
type Console struct {
	Password string
	Token    string
	Expires  time.Time
}

// OpenConsole checks that the Instance's VM runs and mints a one-time console token for it in the tokens'
// namespace.
func (in *Instances) OpenConsole(ctx context.Context, id Identity, settings translate.ConsoleSettings) (Console, error) {
	if err := in.consoleReady(ctx, id); err != nil {
		return Console{}, err
	}
	token := ConsoleToken{
		Mode:     settings.Mode,
		Target:   ConsoleTarget{Namespace: in.namespace, Name: id.Name, InstanceUUID: id.UUID},
		Lifetime: settings.Lifetime,
	}
	var out Console
	var name string
	var err error
	if settings.Mode == translate.ConsoleDirect {
		if out.Token, err = NewDirectToken(); err != nil {
			return Console{}, err
		}
		name = DirectTokenSecretName(out.Token)
	} else {
		if out.Password, err = NewVNCPassword(); err != nil {
			return Console{}, err
		}
		token.Password = out.Password
	}
	secret := token.secret(settings.Namespace, name)
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
func (in *Instances) consoleReady(ctx context.Context, id Identity) error {
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

// CheckConsole is the check action's line for getconsole: its details resolve, and the identity may leave
// tokens in the tokens' namespace. Without either, every other action still works: a warning.
func (in *Instances) CheckConsole(ctx context.Context, d translate.Details) Finding {
	settings, err := d.Console()
	if err != nil {
		return Finding{"console", Warn, "getconsole would fail: " + err.Error()}
	}
	ok, err := in.client.allowed(ctx, settings.Namespace, "create", "", "secrets", "")
	if err != nil {
		return Finding{"console", Warn, explain(err, "ask the API server whether getconsole may create its tokens").Error()}
	}
	if !ok {
		return Finding{"console", Warn, fmt.Sprintf("getconsole would fail: the identity may not create Secrets (console tokens) in %s; apply manifests/extension-rbac/console-tokens.yaml there", settings.Namespace)}
	}
	where := fmt.Sprintf("%s:%d", settings.Host, settings.Port)
	if settings.Mode == translate.ConsoleDirect {
		where = settings.URL
	}
	return Finding{"console", Pass, fmt.Sprintf("%s mode via %s; tokens in %s, valid %s", settings.Mode, where, settings.Namespace, settings.Lifetime)}
}
