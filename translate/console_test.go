package translate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConsoleSettings(t *testing.T) {
	def := func(mod func(*ConsoleSettings)) ConsoleSettings {
		s := ConsoleSettings{Mode: ConsoleVNC, Host: "10.0.0.5", Port: 5900, Namespace: DefaultConsoleNamespace, Lifetime: 30 * time.Second}
		mod(&s)
		return s
	}
	tests := []struct {
		name    string
		vm      map[string]string
		host    map[string]string
		want    ConsoleSettings
		wantErr string
	}{
		{name: "vnc defaults", host: map[string]string{"console_host": "10.0.0.5"}, want: def(func(*ConsoleSettings) {})},
		{name: "vnc port, namespace, lifetime", host: map[string]string{"console_host": "console.example.com", "console_port": "30590", "console_namespace": "consoles", "console_lifetime": "45"},
			want: def(func(s *ConsoleSettings) {
				s.Host, s.Port, s.Namespace, s.Lifetime = "console.example.com", 30590, "consoles", 45*time.Second
			})},
		{name: "lifetime as a duration", host: map[string]string{"console_host": "10.0.0.5", "console_lifetime": "2m"},
			want: def(func(s *ConsoleSettings) { s.Lifetime = 2 * time.Minute })},
		{name: "direct", host: map[string]string{"console_mode": "Direct", "console_url": "https://console.example.com/kv/"},
			want: ConsoleSettings{Mode: ConsoleDirect, URL: "https://console.example.com/kv", Port: 5900, Namespace: DefaultConsoleNamespace, Lifetime: 30 * time.Second}},
		{name: "no host", wantErr: "detail console_host: not set"},
		{name: "an Instance detail is ignored", vm: map[string]string{"console_host": "evil.example.com"}, wantErr: "detail console_host: not set"},
		{name: "an Instance cannot redirect", vm: map[string]string{"console_host": "evil.example.com"}, host: map[string]string{"console_host": "10.0.0.5"}, want: def(func(*ConsoleSettings) {})},
		{name: "bad host", host: map[string]string{"console_host": "not a host"}, wantErr: "detail console_host (set on the host)"},
		{name: "bad port", host: map[string]string{"console_host": "10.0.0.5", "console_port": "70000"}, wantErr: "is not a TCP port"},
		{name: "bad mode", host: map[string]string{"console_mode": "spice"}, wantErr: `"spice" is not one of vnc, direct`},
		{name: "direct without URL", host: map[string]string{"console_mode": "direct"}, wantErr: "detail console_url: not set"},
		{name: "direct with a query", host: map[string]string{"console_mode": "direct", "console_url": "https://c.example.com/?a=b"}, wantErr: "without query"},
		{name: "direct with ftp", host: map[string]string{"console_mode": "direct", "console_url": "ftp://c.example.com"}, wantErr: "is not an http(s) URL"},
		{name: "short lifetime", host: map[string]string{"console_host": "h", "console_lifetime": "1s"}, wantErr: "between 5s and 10m0s"},
		{name: "long lifetime", host: map[string]string{"console_host": "h", "console_lifetime": "3600"}, wantErr: "between 5s and 10m0s"},
		{name: "not the system namespace, where credentials live", host: map[string]string{"console_host": "h", "console_namespace": "cloudstack-kubevirt-system"},
			wantErr: "tokens need a namespace that holds nothing else"},
		{name: "not kube-system", host: map[string]string{"console_host": "h", "console_namespace": "kube-system"}, wantErr: "is refused"},
		{name: "bad namespace", host: map[string]string{"console_host": "h", "console_namespace": "Consoles"}, wantErr: "detail console_namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Payload{ExternalDetails: ExternalDetails{VirtualMachine: tt.vm, Host: tt.host}}
			got, err := p.Details().Console()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
