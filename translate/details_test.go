package translate

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetailsPrecedence(t *testing.T) {
	p := &Payload{ExternalDetails: ExternalDetails{
		VirtualMachine: map[string]string{"image": "vm", "nic_model": "  ", "namespace": "vm"},
		Host:           map[string]string{"image": "host", "disk_bus": "host", "nic_model": "host"},
		ResourceMap:    map[string]string{"image": "cluster", "disk_bus": "cluster", "preference": " cluster ", "namespace": "cluster"},
		Extension:      map[string]string{"image": "ext", "disk_bus": "ext", "preference": "ext", "instancetype": "ext"},
	}}
	tests := []struct{ key, value, level string }{
		{"image", "vm", "virtualmachine"},
		{"disk_bus", "host", "host"},
		{"preference", "cluster", "resourcemap"},
		{"instancetype", "ext", "extension"},
		{"nic_model", "host", "host"},           // an empty value does not mask a less specific one
		{"namespace", "cluster", "resourcemap"}, // an operator's detail set by a user is ignored
		{"iso_url", "", ""},
	}
	d := p.Details()
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			v, level, ok := d.Lookup(tt.key)
			assert.Equal(t, tt.value, v)
			assert.Equal(t, tt.level, level)
			assert.Equal(t, tt.value != "", ok)
		})
	}
}

func TestConnection(t *testing.T) {
	tests := []struct {
		name    string
		host    map[string]string
		ext     map[string]string
		want    Connection
		wantErr string
	}{
		{name: "host details", host: map[string]string{"kubeconfig": "/etc/kv/kc", "namespace": "ns1", "context": "prod"},
			want: Connection{Kubeconfig: "/etc/kv/kc", Namespace: "ns1", Context: "prod"}},
		{name: "kubeconfig from the extension, namespace from the host", host: map[string]string{"namespace": "ns1"}, ext: map[string]string{"kubeconfig": "/etc/kv/kc"},
			want: Connection{Kubeconfig: "/etc/kv/kc", Namespace: "ns1"}},
		{name: "no kubeconfig", host: map[string]string{"namespace": "ns1"}, wantErr: "detail kubeconfig: not set"},
		{name: "relative kubeconfig", host: map[string]string{"namespace": "ns1", "kubeconfig": "kc"}, wantErr: "detail kubeconfig (set on the host)"},
		{name: "no namespace", host: map[string]string{"kubeconfig": "/kc"}, wantErr: "detail namespace: not set"},
		{name: "bad namespace", host: map[string]string{"kubeconfig": "/kc", "namespace": "Tenant_A"}, wantErr: "detail namespace (set on the host)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Payload{ExternalDetails: ExternalDetails{Host: tt.host, Extension: tt.ext}}
			got, err := p.Details().Connection()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				var de *DetailError
				require.ErrorAs(t, err, &de)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLogFile(t *testing.T) {
	assert.Equal(t, DefaultLogFile, (&Payload{}).Details().LogFile())
	p := &Payload{ExternalDetails: ExternalDetails{Extension: map[string]string{"log_file": "/tmp/kv.log"}}}
	assert.Equal(t, "/tmp/kv.log", p.Details().LogFile())
	p.ExternalDetails.Extension["log_file"] = "relative.log"
	assert.Equal(t, DefaultLogFile, p.Details().LogFile())
}

func TestWaitUntilRunning(t *testing.T) {
	for value, want := range map[string]bool{"": true, "false": false, "TRUE": true, "0": false} {
		p := &Payload{ExternalDetails: ExternalDetails{VirtualMachine: map[string]string{"image": "a/b", "wait_until_running": value}}}
		spec, err := p.Details().Spec()
		require.NoError(t, err)
		assert.Equal(t, want, spec.WaitUntilRunning, value)
	}
	p := &Payload{ExternalDetails: ExternalDetails{VirtualMachine: map[string]string{"image": "a/b", "wait_until_running": "sometimes"}}}
	_, err := p.Details().Spec()
	require.ErrorContains(t, err, "detail wait_until_running (set on the instance, template or offering)")
}

func TestParsePayloadSamples(t *testing.T) {
	tests := []struct {
		file, wantName, wantUUID string
		wantNICs                 int
		wantDetails              bool
	}{
		{"create_payload.json", "i-2-45-VM", "126f4562-1f0f-4313-875e-6150cabeb72f", 1, true},
		{"status_payload.json", "i-2-45-VM", "126f4562-1f0f-4313-875e-6150cabeb72f", 0, true},
		{"statuses_payload.json", "", "", 0, true},
		{"custom_action_payload.json", "i-2-45-VM", "126f4562-1f0f-4313-875e-6150cabeb72f", 0, true},
		{"forwarded_unknown_command_payload.json", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tt.file)
			require.NoError(t, err)
			p, err := ParsePayload(data)
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, p.InstanceName())
			assert.Equal(t, tt.wantUUID, p.InstanceUUID())
			if p.VM != nil {
				assert.Len(t, p.VM.NICs, tt.wantNICs)
			}
			assert.Equal(t, tt.wantDetails, p.ExternalDetails.Host != nil)
		})
	}
}

func TestParsePayloadErrorsEchoNothing(t *testing.T) {
	const secret = "s3cr3t-token"
	tests := []struct {
		name, data, wantErr string
	}{
		{"empty", "", "payload file is empty"},
		{"truncated", `{"externaldetails":{"host":{"token":"` + secret, "invalid JSON"},
		{"wrong type", `{"externaldetails":{"host":{"token":["` + secret + `"]}}}`, "holds a JSON array"},
		{"not an object", `"` + secret + `"`, "holds a JSON string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(tt.data))
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestGsonEscapes(t *testing.T) {
	// Gson escapes =, <, >, & and ' in strings; they must decode like any other JSON escape.
	p, err := ParsePayload([]byte(`{"externaldetails":{"host":{"network_map":"100\u003dprod,200\u003dtest","namespace":"a\u0027b"}}}`))
	require.NoError(t, err)
	assert.Equal(t, "100=prod,200=test", p.Details().Get("network_map"))
}

func TestReconcilerLease(t *testing.T) {
	tests := []struct {
		value   string
		want    LeaseRef
		wantOK  bool
		wantErr string
	}{
		{value: "", want: DefaultReconcilerLease, wantOK: true},
		{value: "none"},
		{value: "ops/reconciler-east", want: LeaseRef{Namespace: "ops", Name: "reconciler-east"}, wantOK: true},
		{value: "ops", wantErr: "is not <namespace>/<lease name> or none"},
		{value: "Ops/x", wantErr: "is not <namespace>/<lease name> or none"},
		{value: "ops/", wantErr: "is not <namespace>/<lease name> or none"},
		{value: "ops/a/b", wantErr: "is not <namespace>/<lease name> or none"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			p := &Payload{ExternalDetails: ExternalDetails{Extension: map[string]string{DetailReconcilerLease: tt.value}}}
			got, ok, err := p.Details().ReconcilerLease()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNamespaceGuard(t *testing.T) {
	tests := []struct {
		name    string
		ns      string
		ext     map[string]string // the extension's details
		host    map[string]string // extra host details
		wantErr string
	}{
		{name: "an ordinary namespace", ns: "tenant-a"},
		{name: "kube-system", ns: "kube-system", wantErr: "system namespace (kube-*)"},
		{name: "kube-public", ns: "kube-public", wantErr: "system namespace (kube-*)"},
		{name: "KubeVirt's", ns: "kubevirt", wantErr: "system namespace (kubevirt)"},
		{name: "CDI's", ns: "cdi", wantErr: "system namespace (cdi)"},
		{name: "OpenShift's", ns: "openshift-cnv", wantErr: "system namespace (openshift-*)"},
		{name: "the reconciler's", ns: "cloudstack-kubevirt-system", wantErr: "system namespace"},
		{name: "the console tokens'", ns: "cloudstack-kubevirt-console", wantErr: "system namespace (cloudstack-kubevirt-console)"},
		{name: "the console tokens' elsewhere", ns: "consoles", ext: map[string]string{"console_namespace": "consoles"},
			wantErr: "holds the console gateway's tokens"},
		{name: "the console tokens' named by a host", ns: "consoles", host: map[string]string{"console_namespace": "consoles"},
			wantErr: "holds the console gateway's tokens"},
		{name: "a name that only starts like kube", ns: "kubernetes-tenant"},
		{name: "listed by the allow-list", ns: "tenant-a", ext: map[string]string{"allowed_namespaces": "tenant-*, shared"}},
		{name: "listed exactly", ns: "shared", ext: map[string]string{"allowed_namespaces": "tenant-*, shared"}},
		{name: "not on the allow-list", ns: "other", ext: map[string]string{"allowed_namespaces": "tenant-*, shared"},
			wantErr: "allowed_namespaces detail does not list it"},
		{name: "the allow-list cannot admit a system namespace", ns: "kube-system", ext: map[string]string{"allowed_namespaces": "kube-*"},
			wantErr: "system namespace"},
		{name: "a host detail cannot widen the allow-list", ns: "other",
			ext: map[string]string{"allowed_namespaces": "tenant-*"}, host: map[string]string{"allowed_namespaces": "other"},
			wantErr: "allowed_namespaces detail does not list it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := map[string]string{"kubeconfig": "/etc/kv/kc", "namespace": tt.ns}
			for k, v := range tt.host {
				host[k] = v
			}
			p := &Payload{ExternalDetails: ExternalDetails{Host: host, Extension: tt.ext}}
			_, err := p.Details().Connection()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.ErrorContains(t, err, "detail namespace")
		})
	}
}

func TestInsecureTLSDetail(t *testing.T) {
	for value, want := range map[string]bool{"": false, "false": false, "true": true} {
		p := &Payload{ExternalDetails: ExternalDetails{Host: map[string]string{"kubeconfig": "/kc", "namespace": "ns", "tls_insecure_skip_verify": value}}}
		conn, err := p.Details().Connection()
		require.NoError(t, err)
		assert.Equal(t, want, conn.InsecureTLS, value)
	}
	p := &Payload{ExternalDetails: ExternalDetails{Host: map[string]string{"kubeconfig": "/kc", "namespace": "ns", "tls_insecure_skip_verify": "yes please"}}}
	_, err := p.Details().Connection()
	require.ErrorContains(t, err, "tls_insecure_skip_verify")
}

// Where Instances run, with which credentials, and where the extension writes come from the operator's levels
// only: an Instance, template or offering detail of those names is ignored, or refused where it reaches out.
func TestOperatorOnlyDetails(t *testing.T) {
	p := &Payload{ExternalDetails: ExternalDetails{
		VirtualMachine: map[string]string{
			"namespace": "tenant-b", "kubeconfig": "/etc/other-cluster/admin", "context": "other", "log_file": "/etc/cron.d/x",
			"reconciler_lease": "none", "tls_insecure_skip_verify": "true", "network_map": "1577=tenant-b/prod",
			"root_disk_pvc": "tenant-b/db-disk",
		},
		Host: map[string]string{"namespace": "tenant-a", "kubeconfig": "/etc/cloudstack/kubevirt/kubeconfig"},
	}}
	d := p.Details()
	conn, err := d.Connection()
	require.NoError(t, err)
	assert.Equal(t, Connection{Kubeconfig: "/etc/cloudstack/kubevirt/kubeconfig", Namespace: "tenant-a"}, conn)
	assert.Equal(t, DefaultLogFile, d.LogFile())
	lease, ok, err := d.ReconcilerLease()
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, DefaultReconcilerLease, lease)
	m, err := d.networkMapping()
	require.NoError(t, err)
	assert.Empty(t, m.Explicit)
	_, err = d.Spec()
	require.ErrorContains(t, err, `"tenant-b/db-disk" names another namespace: only host, cluster or extension details may`)
}
