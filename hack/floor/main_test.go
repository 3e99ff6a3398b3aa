package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate and key, used both as a CA and as a client certificate.
func selfSigned(t *testing.T) (cert, key []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func write(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnect(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t)
	b64 := base64.StdEncoding.EncodeToString
	write(t, filepath.Join(dir, "ca.crt"), string(cert))
	write(t, filepath.Join(dir, "client.crt"), string(cert))
	keyFile := write(t, filepath.Join(dir, "client.key"), string(key))
	kubeconfig := write(t, filepath.Join(dir, "kubeconfig"), `apiVersion: v1
kind: Config
current-context: token
contexts:
- {name: token, context: {cluster: data, user: token}}
- {name: files, context: {cluster: file, user: files}}
- {name: inline, context: {cluster: insecure, user: inline}}
- {name: broken, context: {cluster: nowhere, user: token}}
clusters:
- {name: data, cluster: {server: "https://data.example:6443/", certificate-authority-data: `+b64(cert)+`}}
- {name: file, cluster: {server: "https://file.example", certificate-authority: ca.crt}}
- {name: insecure, cluster: {server: "https://insecure.example", insecure-skip-tls-verify: true}}
users:
- {name: token, user: {token: secret}}
- {name: files, user: {client-certificate: client.crt, client-key: `+keyFile+`}}
- {name: inline, user: {client-certificate-data: `+b64(cert)+`, client-key-data: `+b64(key)+`}}
`)
	vms := func(ns string) string { return "/apis/kubevirt.io/v1/namespaces/" + ns + "/virtualmachines" }
	for _, tc := range []struct {
		name, external, base, token, err string
		ca, cert, insecure               bool
	}{{
		name:     "current context, CA data, token; host beats extension, blank values unset",
		external: `{"virtualmachine":{"namespace":" "},"host":{"namespace":"host-ns"},"extension":{"kubeconfig":"KC","namespace":"ext-ns"}}`,
		base:     "https://data.example:6443" + vms("host-ns"), token: "secret", ca: true,
	}, {
		name:     "context detail, certificate files relative to the kubeconfig and absolute",
		external: `{"virtualmachine":{"context":"files"},"resourcemap":{"kubeconfig":"KC","namespace":"ns","context":"token"}}`,
		base:     "https://file.example" + vms("ns"), ca: true, cert: true,
	}, {
		name:     "inline client certificate, insecure cluster",
		external: `{"host":{"kubeconfig":"KC","namespace":"ns","context":"inline"}}`,
		base:     "https://insecure.example" + vms("ns"), cert: true, insecure: true,
	}, {
		name: "unknown context", external: `{"host":{"kubeconfig":"KC","namespace":"ns","context":"nope"}}`, err: `no context "nope"`,
	}, {
		name: "context without its cluster", external: `{"host":{"kubeconfig":"KC","namespace":"ns","context":"broken"}}`, err: `no cluster "nowhere"`,
	}, {
		name: "no namespace", external: `{"extension":{"kubeconfig":"KC"}}`, err: "must be set",
	}, {
		name: "no kubeconfig file", external: `{"host":{"kubeconfig":"/nonexistent","namespace":"ns"}}`, err: "no such file",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var p payload
			doc := `{"virtualmachinename":"i-2-45-VM","externaldetails":` + strings.ReplaceAll(tc.external, "KC", kubeconfig) + `}`
			if err := json.Unmarshal([]byte(doc), &p); err != nil {
				t.Fatal(err)
			}
			a, err := connect(&p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			conf := a.client.Transport.(*http.Transport).TLSClientConfig
			if a.base != tc.base || a.token != tc.token || (conf.RootCAs != nil) != tc.ca ||
				(len(conf.Certificates) > 0) != tc.cert || conf.InsecureSkipVerify != tc.insecure {
				t.Errorf("base %q token %q CA %t cert %t insecure %t; want %q %q %t %t %t", a.base, a.token,
					conf.RootCAs != nil, len(conf.Certificates) > 0, conf.InsecureSkipVerify, tc.base, tc.token, tc.ca, tc.cert, tc.insecure)
			}
		})
	}
}

// TestStatusEndToEnd runs status and statuses against a TLS test double of the API server.
func TestStatusEndToEnd(t *testing.T) {
	const vms = "/apis/kubevirt.io/v1/namespaces/host-ns/virtualmachines"
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer secret" {
			t.Errorf("%s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
		}
		switch {
		case r.URL.Path == vms+"/i-2-45-vm" && r.URL.RawQuery == "":
			_, _ = w.Write([]byte(`{"kind":"VirtualMachine","spec":{"runStrategy":"Always"},"status":{"printableStatus":"Running"}}`))
		case r.URL.Path == vms+"/i-2-46-vm" && r.URL.RawQuery == "":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","reason":"NotFound","code":404}`))
		case r.URL.Path == vms && r.URL.Query().Get("labelSelector") == "app.kubernetes.io/managed-by=cloudstack-kubevirt":
			_, _ = w.Write([]byte(`{"kind":"VirtualMachineList","items":[
				{"metadata":{"name":"i-2-45-vm","labels":{"cloudstack.apache.org/instance-name":"i-2-45-VM"}},"spec":{"runStrategy":"Always"}},
				{"metadata":{"name":"i-2-47-vm","labels":{"cloudstack.apache.org/instance-name":"i-2-47-VM"}},"spec":{"runStrategy":"Halted"}},
				{"metadata":{"name":"unlabelled"},"spec":{"runStrategy":"Always"}}]}`))
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer ts.Close()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	kubeconfig := write(t, filepath.Join(dir, "kubeconfig"), `current-context: test
contexts: [{name: test, context: {cluster: test, user: test}}]
clusters: [{name: test, cluster: {server: "`+ts.URL+`", certificate-authority-data: `+base64.StdEncoding.EncodeToString(ca)+`}}]
users: [{name: test, user: {token: secret}}]
`)
	details := `"externaldetails":{"host":{"namespace":"host-ns"},"extension":{"kubeconfig":"` + kubeconfig + `"}}`
	for _, tc := range []struct{ action, payload, want string }{
		{"status", `{"virtualmachinename":"i-2-45-VM",` + details + `}`, `{"status":"success","power_state":"poweron"}`},
		{"status", `{"virtualmachinename":"i-2-46-VM",` + details + `}`, `{"status":"success","power_state":"poweroff"}`},
		{"statuses", `{` + details + `}`, `{"status":"success","power_state":{"i-2-45-VM":"poweron","i-2-47-VM":"poweroff"}}`},
	} {
		a, err := run([]string{tc.action, write(t, filepath.Join(dir, "payload.json"), tc.payload), "10"})
		if err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		if got, _ := json.Marshal(a); string(got) != tc.want {
			t.Errorf("%s: answered %s, want %s", tc.action, got, tc.want)
		}
	}
}
