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
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Why a token opened nothing. The console client is only ever told that authentication failed; the log says
// which of these it was.
var (
	ErrNoToken = errors.New("no console token matches")
	ErrExpired = errors.New("the console token has expired")
	ErrUsed    = errors.New("the console token was already used")
)

// Tokens reads and consumes the console tokens getconsole leaves in the gateway's namespace. It lists them
// when a client authenticates rather than caching a watch: a token must work the moment getconsole has
// answered, and a cache could lag behind that. Expiry is judged by the API server's clock, which stamped
// the tokens' creation.
type Tokens struct {
	client    *kube.Client
	namespace string
	clock     *kube.ServerClock
}

// NewTokens reads the tokens in namespace with cfg's identity.
func NewTokens(cfg *rest.Config, namespace string) (*Tokens, error) {
	cfg = rest.CopyConfig(cfg)
	clock := kube.NewServerClock(cfg)
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Tokens{client: c, namespace: namespace, clock: clock}, nil
}

// now is the API server's time as of its latest answer.
func (t *Tokens) now() time.Time {
	if now, ok := t.clock.Now(); ok {
		return now
	}
	return time.Now()
}

// list reads the tokens of mode ("" for all).
func (t *Tokens) list(ctx context.Context, mode string) ([]kube.ConsoleToken, error) {
	selector := kube.LabelConsoleToken
	if mode != "" {
		selector += "=" + mode
	}
	var out []kube.ConsoleToken
	opts := kube.ListOptions{LabelSelector: selector, Limit: 500}
	for {
		list := &corev1.SecretList{}
		if err := t.client.List(ctx, t.namespace, list, opts); err != nil {
			return nil, fmt.Errorf("listing the console tokens in %s: %w", t.namespace, err)
		}
		for i := range list.Items {
			if tok, err := kube.ConsoleTokenFromSecret(&list.Items[i]); err == nil {
				out = append(out, tok)
			}
		}
		if opts.Continue = list.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

// Check lists the tokens once: readiness, which proves the API server answers and RBAC allows the list.
func (t *Tokens) Check(ctx context.Context) error {
	_, err := t.list(ctx, "")
	return err
}

// ConsumePassword finds the token whose password gives response to challenge and consumes it.
func (t *Tokens) ConsumePassword(ctx context.Context, challenge, response []byte) (kube.ConsoleTarget, error) {
	tokens, err := t.list(ctx, translate.ConsoleVNC)
	if err != nil {
		return kube.ConsoleTarget{}, err
	}
	now := t.now()
	for _, tok := range tokens {
		want, err := vncAuthResponse(tok.Password, challenge)
		if err != nil || subtle.ConstantTimeCompare(want, response) != 1 {
			continue
		}
		return tok.Target, t.consume(ctx, tok, now)
	}
	return kube.ConsoleTarget{}, ErrNoToken
}

// ConsumeDirect consumes the direct-mode token, found by its hash.
func (t *Tokens) ConsumeDirect(ctx context.Context, token string) (kube.ConsoleTarget, error) {
	if token == "" {
		return kube.ConsoleTarget{}, ErrNoToken
	}
	secret := &corev1.Secret{}
	err := t.client.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: kube.DirectTokenSecretName(token)}, secret)
	if kerrors.IsNotFound(err) {
		return kube.ConsoleTarget{}, ErrNoToken
	}
	if err != nil {
		return kube.ConsoleTarget{}, fmt.Errorf("reading a console token in %s: %w", t.namespace, err)
	}
	tok, err := kube.ConsoleTokenFromSecret(secret)
	if err != nil || tok.Mode != translate.ConsoleDirect {
		return kube.ConsoleTarget{}, ErrNoToken
	}
	return tok.Target, t.consume(ctx, tok, t.now())
}

// consume deletes the token, guarded by its UID: of two sessions (or gateway replicas) presenting it, one wins.
// An expired token is deleted too, and refused.
func (t *Tokens) consume(ctx context.Context, tok kube.ConsoleToken, now time.Time) error {
	err := t.delete(ctx, tok)
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

func (t *Tokens) delete(ctx context.Context, tok kube.ConsoleToken) error {
	uid := tok.UID
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: tok.SecretName}}
	return t.client.Delete(ctx, secret, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
}

// Sweep deletes the expired tokens nobody used, and returns how many.
func (t *Tokens) Sweep(ctx context.Context) (int, error) {
	tokens, err := t.list(ctx, "")
	if err != nil {
		return 0, err
	}
	now, n := t.now(), 0
	for _, tok := range tokens {
		if !now.After(tok.ExpiresAt()) {
			continue
		}
		err := t.delete(ctx, tok)
		switch {
		case err == nil:
			n++
		case kerrors.IsNotFound(err) || kerrors.IsConflict(err):
		default:
			return n, fmt.Errorf("deleting the expired console token %s/%s: %w", t.namespace, tok.SecretName, err)
		}
	}
	return n, nil
}
