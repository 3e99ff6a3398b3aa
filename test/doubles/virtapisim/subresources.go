package virtapisim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// subresource names one request: what RBAC checks and what it acts on.
type subresource struct {
	verb, resource, sub string
	key                 types.NamespacedName
}

func requested(r *http.Request, verb, resource, sub string) subresource {
	return subresource{verb: verb, resource: resource, sub: sub, key: types.NamespacedName{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}}
}

// authorize asks the real API server whether the caller may use the subresource, as the aggregator does before
// proxying to virt-api. It answers the request itself when not.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, sr subresource) bool {
	c := callerOf(r)
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   c.user,
		Groups: append([]string{"system:authenticated"}, c.groups...),
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: sr.key.Namespace, Name: sr.key.Name,
			Verb: sr.verb, Group: "subresources.kubevirt.io", Version: "v1", Resource: sr.resource, Subresource: sr.sub,
		},
	}}
	if err := s.admin.Create(r.Context(), review); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "virtapisim: SubjectAccessReview: "+err.Error())
		return false
	}
	if !review.Status.Allowed {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, fmt.Sprintf(
			"%s.subresources.kubevirt.io %q is forbidden: User %q cannot %s resource \"%s/%s\" in API group \"subresources.kubevirt.io\" in the namespace %q",
			sr.resource, sr.key.Name, c.user, sr.verb, sr.resource, sr.sub, sr.key.Namespace))
		return false
	}
	return true
}

// vmiFor authorizes a VMI subresource and reads the VMI. It answers the request itself, and returns false, when
// the subresource is not served (404, as without virt-api), forbidden, or the VMI does not exist.
func (s *Server) vmiFor(w http.ResponseWriter, r *http.Request, sr subresource, served bool, unserved string) (*kubevirtv1.VirtualMachineInstance, bool) {
	if !served {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "virtapisim: "+unserved)
		return nil, false
	}
	if !s.authorize(w, r, sr) {
		return nil, false
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := s.admin.Get(r.Context(), sr.key, vmi); err != nil {
		writeError(w, err)
		return nil, false
	}
	return vmi, true
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.pauseOrUnpause(w, r, "pause")
}

func (s *Server) unpause(w http.ResponseWriter, r *http.Request) {
	s.pauseOrUnpause(w, r, "unpause")
}

// pauseOrUnpause checks what virt-api checks (PauseVMIRequestHandler, UnpauseVMIRequestHandler) and has the
// simulator's virt-handler carry it out.
func (s *Server) pauseOrUnpause(w http.ResponseWriter, r *http.Request, sub string) {
	sr := requested(r, "update", "virtualmachineinstances", sub)
	vmi, ok := s.vmiFor(w, r, sr, s.opts.Sim != nil, "no simulator to pause VMIs")
	if !ok {
		return
	}
	paused := hasCondition(vmi, kubevirtv1.VirtualMachineInstancePaused)
	var conflict string
	switch {
	case sub == "pause" && vmi.Status.Phase != kubevirtv1.Running:
		conflict = "VMI is not running"
	case sub == "pause" && paused:
		conflict = "VMI is already paused"
	case sub == "unpause" && !paused:
		conflict = "VMI is not paused"
	}
	if conflict != "" {
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io %q: %s", sr.key.Name, conflict))
		return
	}
	act := s.opts.Sim.Pause
	if sub == "unpause" {
		act = s.opts.Sim.Unpause
	}
	if err := act(r.Context(), sr.key.Namespace, sr.key.Name); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	s.count(sub)
	w.WriteHeader(http.StatusOK)
}

// restart asks the VM controller to stop the current VMI and start a new one, as RestartVMRequestHandler does.
func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	sr := requested(r, "update", "virtualmachines", "restart")
	if !s.authorize(w, r, sr) {
		return
	}
	vm := &kubevirtv1.VirtualMachine{}
	if err := s.admin.Get(r.Context(), sr.key, vm); err != nil {
		writeError(w, err)
		return
	}
	conflict := func(msg string) {
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, fmt.Sprintf("Operation cannot be fulfilled on virtualmachine.kubevirt.io %q: %s", sr.key.Name, msg))
	}
	if vm.Spec.RunStrategy != nil && *vm.Spec.RunStrategy == kubevirtv1.RunStrategyHalted {
		conflict("RunStategy Halted does not support manual restart requests")
		return
	}
	vmi := &kubevirtv1.VirtualMachineInstance{}
	if err := s.admin.Get(r.Context(), sr.key, vmi); err != nil || vmi.IsFinal() || vmi.DeletionTimestamp != nil {
		conflict("VM is not running")
		return
	}
	uid := vmi.UID
	patch, err := changeRequestPatch(vm,
		kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StopRequest, UID: &uid},
		kubevirtv1.VirtualMachineStateChangeRequest{Action: kubevirtv1.StartRequest})
	if err != nil {
		conflict(err.Error())
		return
	}
	if err := s.admin.Status().Patch(r.Context(), vm, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		if strings.Contains(err.Error(), "test operation failed") { // another request changed them meanwhile
			conflict(err.Error())
			return
		}
		writeError(w, err)
		return
	}
	s.count("restart")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"gitVersion": "v1.9.0-virtapisim", "gitCommit": "virtapisim", "platform": "linux/amd64"})
}

// vnc relays the guest's VNC stream over a websocket, as virt-api and virt-handler do between them.
func (s *Server) vnc(w http.ResponseWriter, r *http.Request) {
	sr := requested(r, "get", "virtualmachineinstances", "vnc")
	vmi, ok := s.vmiFor(w, r, sr, s.opts.VNC != nil, "no VNC backend")
	if !ok {
		return
	}
	if !vmi.IsRunning() {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("Unable to connect to VM because phase is %s instead of Running", vmi.Status.Phase))
		return
	}
	guest, err := s.opts.VNC(r.Context(), sr.key.Namespace, sr.key.Name)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "can't connect to websocket: "+err.Error())
		return
	}
	defer guest.Close()
	up := websocket.Upgrader{
		Subprotocols:    []string{"plain.kubevirt.io"},
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	defer ws.Close()
	s.count("vnc")
	relay(ws, guest)
}

// relay copies both ways until either side ends, then closes both.
func relay(ws *websocket.Conn, guest net.Conn) {
	var once sync.Once
	done := make(chan struct{})
	stop := func() { once.Do(func() { close(done); guest.Close(); ws.Close() }) }
	go func() {
		defer stop()
		buf := make([]byte, 32<<10)
		for {
			n, err := guest.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline())
				return
			}
		}
	}()
	go func() {
		defer stop()
		for {
			_, rd, err := ws.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(guest, rd); err != nil {
				return
			}
		}
	}()
	<-done
}

func hasCondition(vmi *kubevirtv1.VirtualMachineInstance, t kubevirtv1.VirtualMachineInstanceConditionType) bool {
	for _, c := range vmi.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// writeError answers an API error as the API server gave it.
func writeError(w http.ResponseWriter, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		writeStatus(w, int(st.Code), st.Reason, st.Message)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
}

// changeRequestPatch is the JSON patch virt-api writes to a VM's status for a state change (KubeVirt v1.8.0
// pkg/virt-api/rest/lifecycle.go, getChangeRequestJson): guarded by a test of the current requests only, not by
// the resourceVersion, so KubeVirt's own status writes in between do not make it fail.
func changeRequestPatch(vm *kubevirtv1.VirtualMachine, changes ...kubevirtv1.VirtualMachineStateChangeRequest) ([]byte, error) {
	var ops []map[string]any
	if equality.Semantic.DeepEqual(vm.Status, kubevirtv1.VirtualMachineStatus{}) {
		ops = append(ops, map[string]any{"op": "add", "path": "/status", "value": kubevirtv1.VirtualMachineStatus{StateChangeRequests: changes}})
	} else {
		if len(vm.Status.StateChangeRequests) != 0 {
			return nil, fmt.Errorf("unable to complete request: stop/start already underway")
		}
		ops = append(ops,
			map[string]any{"op": "test", "path": "/status/stateChangeRequests", "value": vm.Status.StateChangeRequests},
			map[string]any{"op": "add", "path": "/status/stateChangeRequests", "value": changes})
	}
	if vm.Status.StartFailure != nil {
		ops = append(ops, map[string]any{"op": "remove", "path": "/status/startFailure"})
	}
	return json.Marshal(ops)
}
