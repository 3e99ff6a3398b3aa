package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube/consoletoken"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Why a token opened nothing. The console client is only ever told that authentication failed; the log says
// which of these it was.
var (
	ErrNoToken = errors.New("no console token matches")
	ErrExpired = errors.New("the console token has expired")
	ErrUsed    = errors.New("the console token was already used")
)

// Tokens reads and consumes the console tokens getconsole leaves in the tokens' namespace. It lists them
// when a client authenticates rather than caching a watch: a token must work the moment getconsole has
// answered, and a cache could lag behind that. Checks that run at once share their lists (sharedList), and a
// list up to reuseList old is reused; a check that finds no match in a list older than itself lists again, so
// a token minted before the client answered is always found. Expiry is judged by the API server's clock, which
// stamped the tokens' creation.
type Tokens struct {
	client    *kube.Client
	namespace string
	clock     *kube.ServerClock
	vnc       *sharedList
	nowFn     func() time.Time // nil: the API server's clock; tests move it
}

// reuseList is how old a list of the VNC tokens may be and still be checked first.
const reuseList = 200 * time.Millisecond

// NewTokens reads the tokens in namespace with cfg's identity.
func NewTokens(cfg *rest.Config, namespace string) (*Tokens, error) {
	cfg = rest.CopyConfig(cfg)
	clock := kube.NewServerClock(cfg)
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	t := &Tokens{client: c, namespace: namespace, clock: clock}
	t.vnc = &sharedList{timeout: 30 * time.Second, list: func(ctx context.Context) ([]consoletoken.Token, error) {
		tokens, _, err := t.list(ctx, translate.ConsoleVNC)
		return tokens, err
	}}
	return t, nil
}

// now is the API server's time as of its latest answer.
func (t *Tokens) now() time.Time {
	if t.nowFn != nil {
		return t.nowFn()
	}
	if now, ok := t.clock.Now(); ok {
		return now
	}
	return time.Now()
}

// list reads the tokens of mode ("" for all), and the token Secrets it cannot read (broken).
func (t *Tokens) list(ctx context.Context, mode string) (tokens []consoletoken.Token, broken []metav1.ObjectMeta, err error) {
	selector := consoletoken.Label
	if mode != "" {
		selector += "=" + mode
	}
	opts := kube.ListOptions{LabelSelector: selector, Limit: 500}
	for {
		list := &corev1.SecretList{}
		if err := t.client.List(ctx, t.namespace, list, opts); err != nil {
			return nil, nil, fmt.Errorf("listing the console tokens in %s: %w", t.namespace, err)
		}
		for i := range list.Items {
			if tok, err := consoletoken.FromSecret(&list.Items[i]); err == nil {
				tokens = append(tokens, tok)
			} else {
				broken = append(broken, list.Items[i].ObjectMeta)
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return tokens, broken, nil
		}
	}
}

// Check lists the tokens once: readiness, which proves the API server answers and RBAC allows the list.
func (t *Tokens) Check(ctx context.Context) error {
	_, _, err := t.list(ctx, "")
	return err
}

// ConsumePassword finds the token whose password gives response to challenge and consumes it.
func (t *Tokens) ConsumePassword(ctx context.Context, challenge, response []byte) (consoletoken.Target, error) {
	asked := time.Now()
	l, err := t.vnc.get(ctx, asked.Add(-reuseList))
	if err != nil {
		return consoletoken.Target{}, err
	}
	stale := l.started.Before(asked)
	if tok, ok := matchPassword(l.tokens, challenge, response); ok {
		err := t.consume(ctx, tok)
		if !stale || !errors.Is(err, ErrUsed) {
			return tok.Target, err
		}
		// Gone since the list: say so as a fresh list would (no token matches), below.
	} else if !stale {
		return consoletoken.Target{}, ErrNoToken
	}
	// The list predates the question: a token minted since is not in it, or one in it is gone. Look once more,
	// in a list that started after the client answered.
	if l, err = t.vnc.get(ctx, asked); err != nil {
		return consoletoken.Target{}, err
	}
	if tok, ok := matchPassword(l.tokens, challenge, response); ok {
		return tok.Target, t.consume(ctx, tok)
	}
	return consoletoken.Target{}, ErrNoToken
}

// matchPassword finds the token whose password gives response to challenge.
func matchPassword(tokens []consoletoken.Token, challenge, response []byte) (consoletoken.Token, bool) {
	for _, tok := range tokens {
		want, err := vncAuthResponse(tok.Password, challenge)
		if err == nil && subtle.ConstantTimeCompare(want, response) == 1 {
			return tok, true
		}
	}
	return consoletoken.Token{}, false
}

// ConsumeDirect consumes the direct-mode token, found by its hash.
func (t *Tokens) ConsumeDirect(ctx context.Context, token string) (consoletoken.Target, error) {
	if token == "" {
		return consoletoken.Target{}, ErrNoToken
	}
	secret := &corev1.Secret{}
	err := t.client.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: consoletoken.DirectSecretName(token)}, secret)
	if kerrors.IsNotFound(err) {
		return consoletoken.Target{}, ErrNoToken
	}
	if err != nil {
		return consoletoken.Target{}, fmt.Errorf("reading a console token in %s: %w", t.namespace, err)
	}
	tok, err := consoletoken.FromSecret(secret)
	if err != nil || tok.Mode != translate.ConsoleDirect {
		return consoletoken.Target{}, ErrNoToken
	}
	return tok.Target, t.consume(ctx, tok)
}

// consume deletes the token, guarded by its UID: of two sessions (or gateway replicas) presenting it, one wins.
// An expired token is deleted too, and refused.
func (t *Tokens) consume(ctx context.Context, tok consoletoken.Token) error {
	now := t.now()
	err := t.deleteSecret(ctx, tok.SecretName, tok.UID)
	if now.After(tok.ExpiresAt()) {
		return fmt.Errorf("%w (at %s, %s ago)", ErrExpired, tok.ExpiresAt().UTC().Format(time.RFC3339), now.Sub(tok.ExpiresAt()).Round(time.Second))
	}
	if kerrors.IsNotFound(err) || kerrors.IsConflict(err) {
		return ErrUsed
	}
	if err != nil {
		return fmt.Errorf("consuming console token %s/%s: %w", t.namespace, tok.SecretName, err)
	}
	return nil
}

func (t *Tokens) deleteSecret(ctx context.Context, name string, uid types.UID) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: name}}
	return t.client.Delete(ctx, secret, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
}

// Sweep deletes the expired tokens nobody used, and the token Secrets it cannot read (a token no longer opens
// anything once older than the longest lifetime getconsole gives), and returns how many.
func (t *Tokens) Sweep(ctx context.Context) (int, error) {
	tokens, broken, err := t.list(ctx, "")
	if err != nil {
		return 0, err
	}
	type expired struct {
		name string
		uid  types.UID
	}
	now := t.now()
	var gone []expired
	for _, tok := range tokens {
		if now.After(tok.ExpiresAt()) {
			gone = append(gone, expired{tok.SecretName, tok.UID})
		}
	}
	for _, meta := range broken {
		if now.After(meta.CreationTimestamp.Add(translate.MaxConsoleLifetime)) {
			gone = append(gone, expired{meta.Name, meta.UID})
		}
	}
	n := 0
	for _, e := range gone {
		err := t.deleteSecret(ctx, e.name, e.uid)
		switch {
		case err == nil:
			n++
		case kerrors.IsNotFound(err) || kerrors.IsConflict(err):
		default:
			return n, fmt.Errorf("deleting the expired console token %s/%s: %w", t.namespace, e.name, err)
		}
	}
	return n, nil
}
