package console

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// These run on envtest without the real VNC peers: the tokens only need the API server.

// tokensOn returns Tokens as admin on a fresh namespace of their own, counting the LISTs of Secrets they send.
func tokensOn(t *testing.T) (*Tokens, string, *atomic.Int32) {
	t.Helper()
	e := sharedEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "console-tokens-"}}
	require.NoError(t, e.Client.Create(t.Context(), ns))
	var lists atomic.Int32
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = 20, 40 // the gateway's defaults
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/secrets") {
				lists.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	tokens, err := NewTokens(cfg, ns.Name)
	require.NoError(t, err)
	return tokens, ns.Name, &lists
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mintVNC(t *testing.T, namespace, password string) {
	t.Helper()
	s := tokenSecret(consoletoken.Token{Mode: translate.ConsoleVNC, Target: consoletoken.Target{Namespace: "ns", Name: "vm"}, Password: password, Lifetime: time.Minute})
	s.Namespace = namespace
	require.NoError(t, sharedEnv(t).Client.Create(t.Context(), s))
}

// A flood of wrong answers shares its LISTs, and a genuine answer among them still gets through.
func TestConcurrentChecksShareLists(t *testing.T) {
	tokens, ns, lists := tokensOn(t)
	mintVNC(t, ns, "goodpass")
	challenge := bytes.Repeat([]byte{9}, 16)
	good, _ := vncAuthResponse("goodpass", challenge)
	const guesses = 60
	var wg sync.WaitGroup
	var wrong, right atomic.Int32
	for i := range guesses + 1 {
		wg.Go(func() {
			response := bytes.Repeat([]byte{byte(i)}, 16)
			if i == guesses {
				response = good
			}
			_, err := tokens.ConsumePassword(t.Context(), challenge, response)
			switch {
			case err == nil:
				right.Add(1)
			case assert.ErrorIs(t, err, ErrNoToken):
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), right.Load(), "the genuine answer opened its console")
	assert.Equal(t, int32(guesses), wrong.Load())
	t.Logf("%d checks, %d LISTs", guesses+1, lists.Load())
	assert.Less(t, lists.Load(), int32(guesses/4), "checks share their lists")
}

// A token minted just after a list that a check may reuse is still found: the check lists again on a miss.
func TestJustMintedTokenWorksDespiteSharedLists(t *testing.T) {
	tokens, ns, _ := tokensOn(t)
	challenge := bytes.Repeat([]byte{3}, 16)
	for i := range 10 {
		// Prime the shared list, then mint and answer at once, well within reuseList.
		_, err := tokens.ConsumePassword(t.Context(), challenge, make([]byte, 16))
		require.ErrorIs(t, err, ErrNoToken)
		password := fmt.Sprintf("minted%02d", i)
		mintVNC(t, ns, password)
		response, _ := vncAuthResponse(password, challenge)
		_, err = tokens.ConsumePassword(t.Context(), challenge, response)
		require.NoError(t, err, "attempt %d", i)
	}
}

// A token Secret the gateway cannot read opens nothing, and is swept once older than the longest lifetime.
func TestSweepRemovesUnreadableTokens(t *testing.T) {
	tokens, ns, _ := tokensOn(t)
	c := sharedEnv(t).Client
	broken := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "console-vnc-", Labels: map[string]string{consoletoken.Label: translate.ConsoleVNC}},
		StringData: map[string]string{"name": "vm"}, // no namespace, password or lifetime
	}
	require.NoError(t, c.Create(t.Context(), broken))
	mintVNC(t, ns, "goodpass")
	key := types.NamespacedName{Namespace: ns, Name: broken.Name}

	n, err := tokens.Sweep(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
	require.NoError(t, c.Get(t.Context(), key, &corev1.Secret{}), "young: it might be a token being written by a newer extension")

	tokens.nowFn = func() time.Time { return time.Now().Add(translate.MaxConsoleLifetime + time.Minute) }
	n, err = tokens.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the unreadable Secret and the expired token")
	err = c.Get(t.Context(), key, &corev1.Secret{})
	assert.True(t, kerrors.IsNotFound(err), "%v", err)
	left := &corev1.SecretList{}
	require.NoError(t, c.List(t.Context(), left, client.InNamespace(ns)))
	assert.Empty(t, left.Items)
}
