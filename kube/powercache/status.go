package powercache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// StatusRequest is what a status payload tells the listing: the Instance, and the details of the levels only
// operators set (host, cluster, extension), which decide everything the host's listing depends on: the
// kubeconfig, context, namespace, heartbeat Lease, status_cache and log file. It is the part of translate.Payload
// a status call needs, read without the rest so that a status answered from the listing costs little more than
// starting the process; TestStatusRequestAgreesWithPayload holds the two readings to the same answers.
type StatusRequest struct {
	Instance, UUID string
	Details        [3]map[string]string // externaldetails.host, .resourcemap, .extension
}

// statusPayload has the JSON names of translate.Payload's fields (translate/payload.go).
type statusPayload struct {
	ExternalDetails struct {
		Host        map[string]string `json:"host"`
		ResourceMap map[string]string `json:"resourcemap"`
		Extension   map[string]string `json:"extension"`
	} `json:"externaldetails"`
	VirtualMachineID   string `json:"virtualmachineid"`
	VirtualMachineName string `json:"virtualmachinename"`
	VM                 *struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"cloudstack.vm.details"`
}

// ParseStatusRequest reads a status payload.
func ParseStatusRequest(data []byte) (StatusRequest, error) {
	var p statusPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return StatusRequest{}, errors.New("payload is not CloudStack's JSON")
	}
	r := StatusRequest{Instance: p.VirtualMachineName, UUID: p.VirtualMachineID,
		Details: [3]map[string]string{p.ExternalDetails.Host, p.ExternalDetails.ResourceMap, p.ExternalDetails.Extension}}
	if p.VM != nil {
		r.Instance = orElse(r.Instance, p.VM.Name)
		r.UUID = orElse(r.UUID, p.VM.UUID)
	}
	return r, nil
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// HostKey names the host's directory: a hash of its operator-level details, level by level, keys sorted. Two
// hosts share a listing only if all of those are the same.
func (r StatusRequest) HostKey() string {
	h := sha256.New()
	for level, details := range r.Details {
		for _, k := range slices.Sorted(maps.Keys(details)) {
			fmt.Fprintf(h, "%d\x00%s\x00%s\x00", level, k, details[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Answer is a status answered from the listing.
type Answer struct {
	State   string
	LogFile string
}

// AnswerStatus answers the request from its host's listing under root; ok is false when the listing cannot
// (no listing it may trust, not the Instance's, or a state it could not tell), and the cluster must be read.
func AnswerStatus(root string, r StatusRequest) (a Answer, ok bool, err error) {
	if r.Instance == "" {
		return Answer{}, false, nil
	}
	dir, err := Existing(root, r.HostKey())
	if err != nil || dir == nil {
		return Answer{}, false, err // no directory: no listing, and nothing to create for a read
	}
	e, logFile, hit, err := dir.Lookup(r.Instance)
	if err != nil || !hit || e.State == "" || e.UUID != r.UUID {
		return Answer{}, false, err
	}
	return Answer{State: e.State, LogFile: logFile}, true, nil
}
