package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// store is what CloudStack's database holds of the resources the script makes, as CloudStack stores them:
// details under the names the API layer gave them. Tests read it to see a registration as CloudStack sees it.
// cmksim has no deployVirtualMachine: tests seed the Instances runCustomAction acts on.
type store struct {
	Extensions      []*extension    `json:"extensions,omitempty"`
	Clusters        []*cluster      `json:"clusters,omitempty"`
	Hosts           []*host         `json:"hosts,omitempty"`
	Templates       []*template     `json:"templates,omitempty"`
	Offerings       []*offering     `json:"serviceofferings,omitempty"`
	CustomActions   []*customAction `json:"customactions,omitempty"`
	VirtualMachines []*vm           `json:"virtualmachines,omitempty"`
}

type extension struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Description string            `json:"description,omitempty"`
	Path        string            `json:"path"`
	State       string            `json:"state"`
	Details     map[string]string `json:"details,omitempty"`
	// HiddenDetails are stored with display=false (orchestratorrequirespreparevm): never in a payload.
	// ExtensionsManagerImpl.createExtension (framework/extensions/src/main/java/org/apache/cloudstack/framework/
	// extensions/manager/ExtensionsManagerImpl.java, apache/cloudstack @928972f7) saves
	// new ExtensionDetailsVO(id, ORCHESTRATOR_REQUIRES_PREPARE_VM, String.valueOf(...), false).
	HiddenDetails map[string]string `json:"hiddendetails,omitempty"`
}

type cluster struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ZoneID      string `json:"zoneid"`
	PodID       string `json:"podid"`
	Hypervisor  string `json:"hypervisor"`
	ClusterType string `json:"clustertype"`
	// ExtensionID and ResourceMapDetails are the cluster's registration with an extension.
	ExtensionID        string            `json:"extensionid,omitempty"`
	ResourceMapDetails map[string]string `json:"resourcemapdetails,omitempty"`
}

type host struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	ClusterID string            `json:"clusterid"`
	URL       string            `json:"url"`
	Details   map[string]string `json:"details,omitempty"`
}

type template struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	ExtensionID string            `json:"extensionid,omitempty"`
	Hypervisor  string            `json:"hypervisor"`
	Format      string            `json:"format"`
	URL         string            `json:"url"`
	OSTypeID    string            `json:"ostypeid"`
	ZoneIDs     []string          `json:"zoneids"`
	Details     map[string]string `json:"details,omitempty"`
}

type offering struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Details map[string]string `json:"details,omitempty"`
}

type customAction struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	ExtensionID      string            `json:"extensionid"`
	Description      string            `json:"description,omitempty"`
	ResourceType     string            `json:"resourcetype,omitempty"`
	AllowedRoleTypes []string          `json:"allowedroletypes"`
	Timeout          int               `json:"timeout"`
	Enabled          bool              `json:"enabled"`
	SuccessMessage   string            `json:"successmessage,omitempty"`
	ErrorMessage     string            `json:"errormessage,omitempty"`
	Parameters       []actionParameter `json:"parameters,omitempty"`
	Details          map[string]string `json:"details,omitempty"`
}

// actionParameter is ExtensionCustomAction.Parameter.
type actionParameter struct {
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	ValidationFormat string   `json:"validationformat"`
	ValueOptions     []string `json:"valueoptions,omitempty"`
	Required         bool     `json:"required"`
}

// vm is an Instance, seeded by tests.
type vm struct {
	ID           string            `json:"id"`
	InstanceName string            `json:"instancename"`
	HostID       string            `json:"hostid"`
	Details      map[string]string `json:"details,omitempty"`
}

func loadStore(path string) (*store, error) {
	st := &store{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("decoding the state %s: %w", path, err)
	}
	return st, nil
}

func (st *store) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func newID(kind string, n int) string { return fmt.Sprintf("%s-%04d", kind, n+1) }

func (st *store) extension(id string) *extension {
	for _, e := range st.Extensions {
		if e.ID == id {
			return e
		}
	}
	return nil
}

func (st *store) cluster(id string) *cluster {
	for _, c := range st.Clusters {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (st *store) host(id string) *host {
	for _, h := range st.Hosts {
		if h.ID == id {
			return h
		}
	}
	return nil
}

func (st *store) customAction(id string) *customAction {
	for _, a := range st.CustomActions {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func (st *store) vm(id string) *vm {
	for _, v := range st.VirtualMachines {
		if v.ID == id {
			return v
		}
	}
	return nil
}

// notFound is ParamProcessWorker.translateUuidToInternalId's refusal of an id naming nothing
// (server/src/main/java/com/cloud/api/dispatch/ParamProcessWorker.java, apache/cloudstack @00a47984): an
// InvalidParameterValueException, PARAM_ERROR, with this text.
func notFound(param, id string) error {
	return paramError("Invalid parameter %s value=%s due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.", param, id)
}
