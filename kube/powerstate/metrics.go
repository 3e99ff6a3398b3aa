package powerstate

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Metrics are the reconciler's own; reconcile errors and latency come from controller-runtime
// (controller_runtime_reconcile_errors_total and controller_runtime_reconcile_time_seconds, controller="powerstate").
type Metrics struct {
	transitions *prometheus.CounterVec
	lastBeat    prometheus.Gauge
	vms         *vmCollector
}

// NewMetrics registers the metrics with reg. cache is read at scrape time for the managed-VM counts, so they
// are never out of step with what the reconciler sees.
func NewMetrics(reg prometheus.Registerer, cache client.Reader) (*Metrics, error) {
	m := &Metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudstack_kubevirt_power_state_transitions_total",
			Help: "Power-state label changes written on managed VirtualMachines, by the new power state.",
		}, []string{"power_state"}),
		lastBeat: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cloudstack_kubevirt_heartbeat_timestamp_seconds",
			Help: "When the heartbeat Lease was last renewed (Unix time); it stops moving while labels are not current.",
		}),
		vms: &vmCollector{cache: cache, desc: prometheus.NewDesc("cloudstack_kubevirt_managed_vms",
			"Managed VirtualMachines by the power state their label tells CloudStack (unlabelled: not reconciled yet).",
			[]string{"power_state"}, nil)},
	}
	for _, c := range []prometheus.Collector{m.transitions, m.lastBeat, m.vms} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) transition(to translate.PowerState) {
	m.transitions.WithLabelValues(string(to)).Inc()
}

func (m *Metrics) heartbeat(at time.Time) { m.lastBeat.Set(float64(at.UnixNano()) / 1e9) }

// vmCollector counts the cached VMs by label when scraped.
type vmCollector struct {
	cache client.Reader
	desc  *prometheus.Desc
}

func (c *vmCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *vmCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var vms kubevirtv1.VirtualMachineList
	if err := c.cache.List(ctx, &vms, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := map[string]int{string(translate.PowerOn): 0, string(translate.PowerOff): 0, "unlabelled": 0}
	for i := range vms.Items {
		state := vms.Items[i].Labels[translate.LabelPowerState]
		if state == "" {
			state = "unlabelled"
		}
		counts[state]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
