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

// HostKey names the host's directory: a hash of its operator-level details, level by level, keys sorted, each
// string length-prefixed so that no two sets of details encode alike. Which listing a status reads depends on
// it; which listings an action makes stale does not (the epoch is one for all hosts).
func (r StatusRequest) HostKey() string {
	h := sha256.New()
	for level, details := range r.Details {
		for _, k := range slices.Sorted(maps.Keys(details)) {
			fmt.Fprintf(h, "%d:%d:%s%d:%s", level, len(k), k, len(details[k]), details[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Answer is a status answered from the listing.
type Answer struct {
	State   string
	LogFile string
}

// AnswerStatus answers the request from its host's listing under root. ok is false when it cannot; trusted then
// says whether a listing that may be trusted has nothing to say of this Instance (not in it, another Instance's
// VM, a label not current), in which case reading that one VM is the answer.
func AnswerStatus(root string, r StatusRequest) (a Answer, ok, trusted bool, err error) {
	if r.Instance == "" {
		return Answer{}, false, false, nil
	}
	dir, err := Existing(root, r.HostKey())
	if err != nil || dir == nil {
		return Answer{}, false, false, err // no directory: no listing, and nothing to create for a read
	}
	res, err := dir.Lookup(r.Instance)
	if err != nil || !res.Trusted {
		return Answer{}, false, false, err
	}
	if !res.Hit || res.Entry.UUID != r.UUID {
		return Answer{}, false, true, nil
	}
	return Answer{State: res.Entry.State, LogFile: res.LogFile}, true, true, nil
}
