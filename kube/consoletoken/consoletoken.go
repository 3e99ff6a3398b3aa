// Package consoletoken is the format of a console token, the one thing the extension and the console gateway
// share: getconsole writes tokens in it (kube), the gateway reads and consumes them (kube/console).
//
// A console token is a Secret in the tokens' namespace (console_namespace, which holds nothing else; the gateway
// runs elsewhere): getconsole creates it, the gateway consumes it (deletes it, guarded by its UID, so a token
// opens one session however many gateway replicas run) and sweeps it once expired. It names one VM. The
// extension may only create Secrets there; the gateway only reads and deletes them. That is the whole channel
// between the two: no new network path from the management server.
package consoletoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Label marks a console token; its value is the mode, translate.ConsoleVNC or ConsoleDirect.
const Label = translate.Prefix + "console-token"

// The token's data keys.
const (
	keyNamespace = "namespace"
	keyName      = "name"
	keyUUID      = "instance-uuid"
	keyPassword  = "password" // vnc mode only; a direct token is never stored, only its hash (the name)
	keyLifetime  = "lifetime-seconds"
)

// The names of the tokens' Secrets start with the mode.
const (
	vncPrefix    = "console-vnc-"
	directPrefix = "console-direct-"
)

// Target is the VM a console token opens.
type Target struct {
	Namespace, Name string
	InstanceUUID    string // "" skips the ownership check
}

func (t Target) String() string { return t.Namespace + "/" + t.Name }

// Token is a console token as stored.
type Token struct {
	Mode     string
	Target   Target
	Password string // vnc mode
	Lifetime time.Duration

	// Set by the API server.
	SecretName string
	UID        types.UID
	Created    time.Time
}

// ExpiresAt is when the token stops opening a console, by the API server's clock (creationTimestamp has
// second resolution, so a token lives up to a second less than its lifetime).
func (t Token) ExpiresAt() time.Time { return t.Created.Add(t.Lifetime) }

// Secret is the Secret that stores t in namespace. A direct token is stored under name, the hash of the token
// (DirectSecretName); with name "", the API server names a vnc token's Secret.
func (t Token) Secret(namespace, name string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Labels:    map[string]string{Label: t.Mode, translate.LabelManagedBy: translate.ManagedBy},
		},
		Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{
			keyNamespace: t.Target.Namespace,
			keyName:      t.Target.Name,
			keyUUID:      t.Target.InstanceUUID,
			keyLifetime:  strconv.Itoa(int(t.Lifetime / time.Second)),
		},
	}
	if name != "" {
		s.Name = name
	} else {
		s.GenerateName = vncPrefix
	}
	if t.Password != "" {
		s.StringData[keyPassword] = t.Password
	}
	return s
}

// FromSecret reads a token the extension stored.
func FromSecret(s *corev1.Secret) (Token, error) {
	t := Token{
		Mode:       s.Labels[Label],
		Target:     Target{Namespace: string(s.Data[keyNamespace]), Name: string(s.Data[keyName]), InstanceUUID: string(s.Data[keyUUID])},
		Password:   string(s.Data[keyPassword]),
		SecretName: s.Name,
		UID:        s.UID,
		Created:    s.CreationTimestamp.Time,
	}
	seconds, err := strconv.Atoi(string(s.Data[keyLifetime]))
	if err != nil || seconds <= 0 {
		return t, fmt.Errorf("console token %s/%s has no valid %s", s.Namespace, s.Name, keyLifetime)
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

// DirectSecretName is the name of the Secret that stands for a direct token: a hash, so that reading the
// Secrets never yields a token that opens a console.
func DirectSecretName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return directPrefix + hex.EncodeToString(sum[:])
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
