package consoletoken

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

func TestSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw, err := NewVNCPassword()
		require.NoError(t, err)
		require.Len(t, pw, VNCPasswordLength)
		for _, c := range pw {
			require.True(t, strings.ContainsRune(vncPasswordAlphabet, c), "%q", pw)
		}
		seen[pw] = true
	}
	assert.Len(t, seen, 200, "no repeats")
	tok, err := NewDirectToken()
	require.NoError(t, err)
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, tok)
	name := DirectSecretName(tok)
	assert.Regexp(t, `^console-direct-[0-9a-f]{64}$`, name)
	assert.NotContains(t, name, tok)
}

func TestTokenRoundTrip(t *testing.T) {
	tok := Token{Mode: translate.ConsoleVNC, Target: Target{Namespace: "ns", Name: "i-2-45-vm", InstanceUUID: "u"}, Password: "abcdefgh", Lifetime: 30 * time.Second}
	s := tok.Secret("cloudstack-kubevirt-system", "")
	assert.Equal(t, "console-vnc-", s.GenerateName)
	assert.Equal(t, translate.ConsoleVNC, s.Labels[Label])
	// What the API server does: stringData becomes data; it stamps the creation time.
	stored := &corev1.Secret{ObjectMeta: s.ObjectMeta, Data: map[string][]byte{}}
	stored.Name, stored.UID = "console-vnc-x1", "uid-1"
	stored.CreationTimestamp = metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	for k, v := range s.StringData {
		stored.Data[k] = []byte(v)
	}
	got, err := FromSecret(stored)
	require.NoError(t, err)
	assert.Equal(t, tok.Target, got.Target)
	assert.Equal(t, "abcdefgh", got.Password)
	assert.Equal(t, time.Date(2026, 11, 25, 12, 0, 30, 0, time.UTC), got.ExpiresAt())

	direct := Token{Mode: translate.ConsoleDirect, Target: tok.Target, Lifetime: time.Minute}.Secret("ns", "console-direct-abc")
	assert.Equal(t, "console-direct-abc", direct.Name)
	assert.NotContains(t, direct.StringData, "password", "a direct token stores no secret at all")

	for name, mutate := range map[string]func(*corev1.Secret){
		"no lifetime":      func(s *corev1.Secret) { delete(s.Data, "lifetime-seconds") },
		"zero lifetime":    func(s *corev1.Secret) { s.Data["lifetime-seconds"] = []byte("0") },
		"no VM":            func(s *corev1.Secret) { delete(s.Data, "name") },
		"vnc, no password": func(s *corev1.Secret) { delete(s.Data, "password") },
	} {
		t.Run(name, func(t *testing.T) {
			bad := stored.DeepCopy()
			mutate(bad)
			_, err := FromSecret(bad)
			require.Error(t, err)
		})
	}
}
