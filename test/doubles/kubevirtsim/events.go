package kubevirtsim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Components that record the simulated Events, as KubeVirt's recorders name themselves.
const (
	virtController = "virtualmachine-controller"
	virtHandler    = "virt-handler"
	snapshotCtrl   = "snapshot-controller"
	restoreCtrl    = "restore-controller"
)

// event records a core/v1 Event on obj, as client-go's recorder in virt-controller and virt-handler does. A
// failure is ignored: KubeVirt's recorders drop events too when the API server is busy.
func (s *Sim) event(ctx context.Context, obj client.Object, component, eventType, reason, message string) {
	gvk, err := s.client.GroupVersionKindFor(obj)
	if err != nil {
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: fmt.Sprintf("%s.%x", obj.GetName(), time.Now().UnixNano())},
		InvolvedObject: corev1.ObjectReference{
			Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: eventType, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source: corev1.EventSource{Component: component},
	}
	_ = s.client.Create(ctx, ev)
}
