// Command floor is the performance floor of the extension, for benchmarks: the same argv
// (`floor <action> <payload.json> <timeout-seconds>`) and answers, but only the one KubeVirt API request each
// action needs, made with the standard library (and sigs.k8s.io/yaml for the kubeconfig). It validates nothing,
// waits for nothing and reads no VMI; create posts the VirtualMachine in the file named by $FLOOR_VM_JSON.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

const selector = "app.kubernetes.io/managed-by=cloudstack-kubevirt"

type payload struct {
	Name     string `json:"virtualmachinename"`
	External struct {
		VirtualMachine, Host, ResourceMap, Extension map[string]string
	} `json:"externaldetails"`
}

// detail looks key up most specific first; an empty value counts as unset.
func (p *payload) detail(key string) string {
	e := p.External
	for _, m := range []map[string]string{e.VirtualMachine, e.Host, e.ResourceMap, e.Extension} {
		if v := strings.TrimSpace(m[key]); v != "" {
			return v
		}
	}
	return ""
}

// entry is one named context, cluster or user of a kubeconfig ([]byte fields are base64 in the file).
type entry struct {
	Name    string
	Context struct{ Cluster, User string }
	Cluster struct {
		Server   string
		CAData   []byte `json:"certificate-authority-data"`
		CAFile   string `json:"certificate-authority"`
		Insecure bool   `json:"insecure-skip-tls-verify"`
	}
	User struct {
		CertData []byte `json:"client-certificate-data"`
		CertFile string `json:"client-certificate"`
		KeyData  []byte `json:"client-key-data"`
		KeyFile  string `json:"client-key"`
		Token    string
	}
}

func pick(entries []entry, name, what string) (*entry, error) {
	for i := range entries {
		if entries[i].Name == name {
			return &entries[i], nil
		}
	}
	return nil, fmt.Errorf("the kubeconfig has no %s %q", what, name)
}

// api is where the payload's VirtualMachines live: base is their collection's URL.
type api struct {
	client      *http.Client
	base, token string
}

// connect resolves the kubeconfig, context and namespace details.
func connect(p *payload) (*api, error) {
	path, ns := p.detail("kubeconfig"), p.detail("namespace")
	if path == "" || ns == "" {
		return nil, errors.New("the details kubeconfig and namespace must be set")
	}
	var kc struct {
		CurrentContext            string `json:"current-context"`
		Contexts, Clusters, Users []entry
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = yaml.Unmarshal(data, &kc)
	}
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	c, err := pick(kc.Contexts, cmp.Or(p.detail("context"), kc.CurrentContext), "context")
	if err != nil {
		return nil, err
	}
	cl, err := pick(kc.Clusters, c.Context.Cluster, "cluster")
	if err != nil {
		return nil, err
	}
	u, err := pick(kc.Users, c.Context.User, "user")
	if err != nil {
		return nil, err
	}
	// read returns data, else the file name (relative to the kubeconfig's directory, as kubectl reads it).
	read := func(data []byte, name string) []byte {
		if len(data) > 0 || name == "" {
			return data
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		data, e := os.ReadFile(name)
		err = cmp.Or(err, e)
		return data
	}
	ca, cert, key := read(cl.Cluster.CAData, cl.Cluster.CAFile), read(u.User.CertData, u.User.CertFile), read(u.User.KeyData, u.User.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	conf := &tls.Config{InsecureSkipVerify: cl.Cluster.Insecure}
	if len(ca) > 0 {
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("kubeconfig: cluster %q has no PEM certificate authority", cl.Name)
		}
	}
	if len(cert) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: user %q: %w", u.Name, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	// HTTP/1.1 (no ForceAttemptHTTP2): with one request per process, HTTP/2's preface would only add cost.
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: conf}
	base := strings.TrimSuffix(cl.Cluster.Server, "/") + "/apis/kubevirt.io/v1/namespaces/" + url.PathEscape(ns) + "/virtualmachines"
	return &api{client: &http.Client{Transport: transport}, base: base, token: u.User.Token}, nil
}

// do makes one request and returns the status code and body of the answer, and an error for any code >= 300.
func (a *api) do(ctx context.Context, method, url, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode >= 300 {
		var status struct{ Message string }
		_ = json.Unmarshal(data, &status)
		err = fmt.Errorf("%s %s: %s: %s", method, req.URL.Path, resp.Status, status.Message)
	}
	return resp.StatusCode, data, err
}

// vm is what the floor reads of a VirtualMachine.
type vm struct {
	Metadata struct{ Labels map[string]string }
	Spec     struct{ RunStrategy string }
}

func (v *vm) power() string {
	if v.Spec.RunStrategy == "Halted" {
		return "poweroff"
	}
	return "poweron"
}

type answer struct {
	Status     string `json:"status"`
	Message    string `json:"message,omitempty"`
	PowerState any    `json:"power_state,omitempty"`
}

func run(args []string) (*answer, error) {
	if len(args) != 3 {
		return nil, errors.New("usage: floor <action> <payload.json> <timeout-seconds>")
	}
	secs, err := strconv.Atoi(args[2])
	if err != nil || secs <= 0 {
		return nil, fmt.Errorf("timeout %q is not a positive number of seconds", args[2])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	var p payload
	data, err := os.ReadFile(args[1])
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	a, err := connect(&p)
	if err != nil {
		return nil, err
	}
	action, name := args[0], strings.ToLower(p.Name)
	if name == "" && action != "statuses" {
		return nil, errors.New("the payload has no virtualmachinename")
	}
	// One request per action; tolerated is the error code that counts as success.
	method, target, contentType, tolerated := http.MethodGet, a.base+"/"+url.PathEscape(name), "", 0
	var body []byte
	switch action {
	case "status":
		tolerated = http.StatusNotFound
	case "statuses":
		target = a.base + "?labelSelector=" + url.QueryEscape(selector)
	case "create":
		method, target, contentType, tolerated = http.MethodPost, a.base, "application/json", http.StatusConflict
		if body, err = os.ReadFile(os.Getenv("FLOOR_VM_JSON")); err != nil {
			return nil, fmt.Errorf("FLOOR_VM_JSON: %w", err)
		}
	case "stop", "start":
		method, contentType = http.MethodPatch, "application/merge-patch+json"
		body = []byte(`{"spec":{"runStrategy":"` + map[string]string{"stop": "Halted", "start": "Always"}[action] + `"}}`)
	case "delete":
		method, contentType, tolerated = http.MethodDelete, "application/json", http.StatusNotFound
		body = []byte(`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}`)
	default:
		return nil, fmt.Errorf("action %q is not supported", action)
	}
	code, data, err := a.do(ctx, method, target, contentType, body)
	if tolerated != 0 && code == tolerated {
		// Create found the VM already there; status and delete found none, which is a halted VM.
		data, err = []byte(`{"spec":{"runStrategy":"Halted"}}`), nil
	}
	if err != nil {
		return nil, err
	}
	switch action {
	case "status":
		var v vm
		err = json.Unmarshal(data, &v)
		return &answer{Status: "success", PowerState: v.power()}, err
	case "statuses":
		var list struct{ Items []vm }
		err = json.Unmarshal(data, &list)
		states := map[string]string{}
		for _, v := range list.Items {
			if n := v.Metadata.Labels["cloudstack.apache.org/instance-name"]; n != "" {
				states[n] = v.power()
			}
		}
		return &answer{Status: "success", PowerState: states}, err
	}
	return &answer{Status: "success", Message: action + " " + name}, nil
}

func main() {
	a, err := run(os.Args[1:])
	if err != nil {
		msg := err.Error()
		if len(os.Args) > 1 {
			msg = os.Args[1] + ": " + msg
		}
		a = &answer{Status: "error", Message: msg}
	}
	out, _ := json.Marshal(a)
	os.Stdout.Write(append(out, '\n'))
	if err != nil {
		os.Exit(1)
	}
}
