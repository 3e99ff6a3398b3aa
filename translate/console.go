package translate

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Console details: where CloudStack's console proxy (or a user's browser) reaches the console gateway. All are
// operator-level: an Instance detail must never redirect a console, or its password, elsewhere.
const (
	DetailConsoleHost      = "console_host"
	DetailConsolePort      = "console_port"
	DetailConsoleMode      = "console_mode"
	DetailConsoleURL       = "console_url"
	DetailConsoleNamespace = "console_namespace"
	DetailConsoleLifetime  = "console_lifetime"
)

// Console modes: vnc hands CloudStack's console proxy a host, port and one-time VNC password; direct hands the
// user a URL of the gateway's own web console with a one-time token.
const (
	ConsoleVNC    = "vnc"
	ConsoleDirect = "direct"
)

// Console defaults. The lifetime only has to cover the console proxy's connection right after getconsole. The
// tokens get a namespace of their own that holds nothing else: the gateway may read and delete every Secret
// there, so it must not be where the extension's or anyone's credentials are kept.
const (
	DefaultConsolePort      = 5900
	DefaultConsoleNamespace = "cloudstack-kubevirt-console"
	DefaultConsoleLifetime  = 30 * time.Second
	// MaxConsoleLifetime bounds console_lifetime; the gateway sweeps a token it cannot read once it is older.
	MaxConsoleLifetime = 10 * time.Minute
)

// ConsoleSettings say how getconsole answers.
type ConsoleSettings struct {
	Mode string // ConsoleVNC or ConsoleDirect
	Host string // vnc: the gateway's address as the console proxy VM reaches it
	Port int    // vnc
	URL  string // direct: the gateway's base URL, no trailing slash
	// Namespace holds the tokens and nothing else; the gateway reads it (it runs elsewhere).
	Namespace string
	Lifetime  time.Duration
}

// Console resolves the console details, from the operator's levels only.
func (d Details) Console() (ConsoleSettings, error) {
	mode, err := d.oneOf(DetailConsoleMode, ConsoleVNC)
	if err != nil {
		return ConsoleSettings{}, err
	}
	s := ConsoleSettings{Mode: mode, Port: DefaultConsolePort, Namespace: DefaultConsoleNamespace, Lifetime: DefaultConsoleLifetime}
	if ns, _, ok := d.Lookup(DetailConsoleNamespace); ok {
		if msg := dns1123Label(ns); msg != "" {
			return ConsoleSettings{}, d.invalid(DetailConsoleNamespace, "%q is not a Kubernetes namespace name: %s", ns, msg)
		}
		for _, pattern := range systemNamespaces {
			if ns != DefaultConsoleNamespace && matchName(pattern, ns) {
				return ConsoleSettings{}, d.invalid(DetailConsoleNamespace, "%q is refused: the console gateway may read and delete every Secret in it, so the tokens need a namespace that holds nothing else (the default %s)", ns, DefaultConsoleNamespace)
			}
		}
		s.Namespace = ns
	}
	if s.Lifetime, err = d.consoleLifetime(); err != nil {
		return ConsoleSettings{}, err
	}
	if mode == ConsoleDirect {
		s.URL, err = d.consoleURL()
		return s, err
	}
	if s.Host, err = d.consoleHost(); err != nil {
		return ConsoleSettings{}, err
	}
	if v, _, ok := d.Lookup(DetailConsolePort); ok {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return ConsoleSettings{}, d.invalid(DetailConsolePort, "%q is not a TCP port (1-65535)", v)
		}
		s.Port = p
	}
	return s, nil
}

func (d Details) consoleHost() (string, error) {
	host, _, ok := d.Lookup(DetailConsoleHost)
	if !ok {
		return "", &DetailError{Key: DetailConsoleHost, Reason: "not set: add the address at which the zone's console proxy VM reaches the console gateway (its Service's LoadBalancer or node address, see manifests/console) to the cluster or extension details, or set " + DetailConsoleMode + "=" + ConsoleDirect}
	}
	if net.ParseIP(host) == nil && dns1123Subdomain(strings.ToLower(host)) != "" {
		return "", d.invalid(DetailConsoleHost, "%q is neither an IP address nor a host name", host)
	}
	return host, nil
}

func (d Details) consoleURL() (string, error) {
	raw, _, ok := d.Lookup(DetailConsoleURL)
	if !ok {
		return "", &DetailError{Key: DetailConsoleURL, Reason: "not set: " + DetailConsoleMode + "=" + ConsoleDirect + " needs the console gateway's base URL as users' browsers reach it, e.g. https://console.example.com"}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", d.invalid(DetailConsoleURL, "%q is not an http(s) URL without query, fragment or credentials", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func (d Details) consoleLifetime() (time.Duration, error) {
	return d.duration(DetailConsoleLifetime, DefaultConsoleLifetime, 5*time.Second, MaxConsoleLifetime)
}
