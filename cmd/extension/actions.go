package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// Actions are the lifecycle operations CloudStack sends to an Orchestrator extension.
var actions = map[string]func(context.Context, *call) (any, error){
	"prepare":  prepare,
	"create":   create,
	"start":    start,
	"stop":     stop,
	"reboot":   reboot,
	"delete":   deleteInstance,
	"status":   status,
	"statuses": statuses,
	// getconsole (CloudStack 4.22): see console.go.
	"getconsole": getconsole,
	// Custom actions (custom.go), by lower-cased name.
	"listsnapshots":   onInstance(noParams, listSnapshots),
	"createsnapshot":  onInstance(translate.Params.CreateSnapshotParams, createSnapshot),
	"restoresnapshot": onInstance(translate.Params.SnapshotNameParams, restoreSnapshot),
	"deletesnapshot":  onInstance(translate.Params.SnapshotNameParams, deleteSnapshot),
	"pause":           onInstance(noParams, pauseInstance),
	"resume":          onInstance(noParams, resumeInstance),
	"migrate":         onInstance(translate.Params.MigrateParams, migrateInstance),
	"describe":        onInstance(translate.Params.DescribeParams, describeInstance),
}

// usesVirtAPI are the actions that call virt-api's subresources; only they build its client.
var usesVirtAPI = map[string]bool{"reboot": true, "pause": true, "resume": true}

// call is one invocation: the payload, where its Instances live, and how to reach them.
type call struct {
	payload   *translate.Payload
	conn      translate.Connection
	instances *kube.Instances
	log       *slog.Logger
	// rollback is the time reserved after the deadline for undoing a failed create.
	rollback time.Duration
}

func dispatch(ctx context.Context, action string, p *translate.Payload, log *slog.Logger, rollback time.Duration) (any, error) {
	if action == "check" {
		answer, ok := check(ctx, p, log)
		if !ok && !runAsCustomAction(p) {
			return nil, checkFailed{answer} // from a shell: exit 1
		}
		return answer, nil
	}
	act, ok := actions[actionKey(action)]
	if !ok {
		return nil, fmt.Errorf("unsupported action %q: this extension handles prepare, create, start, stop, reboot, delete, status, statuses, getconsole, and the custom actions check, %s", truncate(action, 200), strings.Join(customActions, ", "))
	}
	conn, err := p.Details().Connection()
	if err != nil {
		return nil, err
	}
	cfg, err := kube.RESTConfig(conn)
	if err != nil {
		return nil, err
	}
	if cfg.Insecure {
		log.Warn("TLS verification of the API server is off, as the detail " + translate.DetailInsecureTLS + " allows")
	}
	lease, trustLabels, err := p.Details().ReconcilerLease()
	if err != nil {
		return nil, err
	}
	var clock *kube.ServerClock
	if trustLabels && (action == "status" || action == "statuses") {
		clock = kube.NewServerClock(cfg) // before the client is built, so it sees the client's responses
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	var virtAPI *kube.VirtAPI
	if usesVirtAPI[actionKey(action)] {
		if virtAPI, err = kube.NewVirtAPI(cfg); err != nil {
			return nil, err
		}
	}
	instances := kube.NewInstances(c, conn.Namespace, virtAPI)
	if clock != nil {
		instances.TrustHeartbeat(lease, clock)
	}
	log = log.With("namespace", conn.Namespace, "server", cfg.Host)
	return act(ctx, &call{payload: p, conn: conn, instances: instances, log: log, rollback: rollback})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// desired resolves the details and builds the Instance's VirtualMachine; nothing is created when it fails. An
// instancetype is read from the cluster, and refused unless it gives exactly what CloudStack accounts.
func (c *call) desired(ctx context.Context) (*kubevirtv1.VirtualMachine, translate.Spec, error) {
	spec, err := c.payload.Details().Spec()
	if err != nil {
		return nil, spec, err
	}
	if spec.Instancetype != "" {
		gives, err := c.instances.ClusterInstancetype(ctx, spec.Instancetype)
		if err != nil {
			return nil, spec, err
		}
		spec.InstancetypeGives = &gives
	}
	vm, err := translate.VirtualMachine(c.payload, c.conn.Namespace, spec)
	return vm, spec, err
}

func (c *call) identity() (kube.Identity, error) {
	name, err := translate.VMName(c.payload.InstanceName())
	if err != nil {
		return kube.Identity{}, err
	}
	return kube.Identity{Name: name, UUID: c.payload.InstanceUUID()}, nil
}

func (c *call) ref(name string) string { return c.conn.Namespace + "/" + name }

// prepare validates the Instance against the details and the cluster before CloudStack sets up its network,
// and records where it will run as Instance details (visible in CloudStack's UI). Its answer is a JSON merge
// patch on CloudStack's VirtualMachineTO.
func prepare(ctx context.Context, c *call) (any, error) {
	vm, _, err := c.desired(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.instances.CheckReferences(ctx, vm); err != nil {
		return nil, err
	}
	if err := c.instances.CheckCloneSources(ctx, vm); err != nil {
		return nil, err
	}
	return map[string]any{"details": map[string]string{
		"External:kubevirt_namespace": vm.Namespace,
		"External:kubevirt_vm":        vm.Name,
	}}, nil
}

func create(ctx context.Context, c *call) (any, error) {
	vm, spec, err := c.desired(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.instances.Create(ctx, vm, spec.WaitUntilRunning, c.rollback); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "Instance " + c.payload.InstanceName() + " runs as VirtualMachine " + c.ref(vm.Name)}, nil
}

func start(ctx context.Context, c *call) (any, error) {
	vm, spec, err := c.desired(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.instances.Start(ctx, vm, spec.WaitUntilRunning); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(vm.Name) + " started"}, nil
}

func stop(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.instances.Stop(ctx, id); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " stopped"}, nil
}

func reboot(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.instances.Reboot(ctx, id); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " rebooted"}, nil
}

func deleteInstance(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.instances.Delete(ctx, id); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " and its disks deleted"}, nil
}

// powerAnswer is the answer of status (PowerState is a string) and statuses (a map by instance name).
type powerAnswer struct {
	Status     string `json:"status"`
	PowerState any    `json:"power_state"`
}

func status(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	state, source, err := c.instances.PowerState(ctx, id)
	if err != nil {
		return nil, err
	}
	c.log.Info("status", "power_state", state, "source", source)
	return powerAnswer{Status: "success", PowerState: state}, nil
}

func statuses(ctx context.Context, c *call) (any, error) {
	states, source, err := c.instances.PowerStates(ctx)
	if err != nil {
		return nil, err
	}
	c.log.Info("statuses", "vms", len(states), "source", source)
	return powerAnswer{Status: "success", PowerState: states}, nil
}
