package main

import (
	"context"
	"log/slog"
	"time"

	kubevirtv1 "kubevirt.io/api/core/v1"

	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/kube"
	"github.com/cloudstack-kubevirt/cloudstack-kubevirt/translate"
)

// call is one invocation: the payload, where its Instances live, and how to reach them.
type call struct {
	payload *translate.Payload
	conn    translate.Connection
	kube    *kube.Scope
	log     *slog.Logger
	// power is the host's shared listing of power states; nil where none is kept.
	power *powerCache
	// listingTrusted: a listing the round may trust was there but could not answer (cached said so).
	listingTrusted bool
	// rollback is the time reserved after the deadline for undoing a failed create.
	rollback time.Duration
}

// dispatch runs the catalog's action named name.
func dispatch(ctx context.Context, name string, p *translate.Payload, log *slog.Logger, rollback time.Duration) (any, error) {
	actions := catalog()
	act, ok := find(actions, name)
	if !ok {
		return nil, unsupported(actions, name)
	}
	if act.alone != nil {
		return act.alone(ctx, p, log)
	}
	trusted := false
	if act.cached != nil {
		var answer any
		if answer, ok, trusted = act.cached(p, log); ok {
			return answer, nil
		}
	}
	if act.changesPower {
		invalidatePowerStates(log)
		defer invalidatePowerStates(log) // before the answer: CloudStack's next status sees the change
	}
	c, err := connect(act, p, log, rollback)
	if err != nil {
		return nil, err
	}
	c.listingTrusted = trusted
	return act.run(ctx, c)
}

// connect makes the call for act: the payload's connection, and the clients act needs.
func connect(act action, p *translate.Payload, log *slog.Logger, rollback time.Duration) (*call, error) {
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
	if trustLabels && act.heartbeat {
		clock = kube.NewServerClock(cfg) // before the client is built, so it sees the client's responses
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	var virtAPI *kube.VirtAPI
	if act.VirtAPI {
		if virtAPI, err = kube.NewVirtAPI(cfg); err != nil {
			return nil, err
		}
	}
	scope := kube.NewScope(c, conn.Namespace, virtAPI)
	if clock != nil {
		scope.TrustHeartbeat(lease, clock)
	}
	log = log.With("namespace", conn.Namespace, "server", cfg.Host)
	out := &call{payload: p, conn: conn, kube: scope, log: log, rollback: rollback}
	if act.cached != nil {
		if out.power, err = openPowerCache(p); err != nil {
			log.Warn("power-state listing not used", "error", err)
		}
	}
	return out, nil
}

// desired resolves the details and builds the Instance's VirtualMachine; nothing is created when it fails. An
// instancetype is read from the cluster, and refused unless it gives exactly what CloudStack accounts.
func (c *call) desired(ctx context.Context) (*kubevirtv1.VirtualMachine, translate.Spec, error) {
	spec, err := resolveSpec(ctx, c.kube.Lifecycle(), c.payload)
	if err != nil {
		return nil, spec, err
	}
	vm, err := translate.VirtualMachine(c.payload, c.conn.Namespace, spec)
	return vm, spec, err
}

// resolveSpec resolves the payload's details and reads the instancetype they name, if any, for
// translate.VirtualMachine to compare with what CloudStack accounts.
func resolveSpec(ctx context.Context, in kube.Lifecycle, p *translate.Payload) (translate.Spec, error) {
	spec, err := p.Details().Spec()
	if err != nil || spec.Instancetype == "" {
		return spec, err
	}
	gives, err := in.ClusterInstancetype(ctx, spec.Instancetype)
	if err != nil {
		return spec, err
	}
	spec.InstancetypeGives = &gives
	return spec, nil
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
	if err := c.kube.Lifecycle().CheckReferences(ctx, vm); err != nil {
		return nil, err
	}
	if err := c.kube.Lifecycle().CheckCloneSources(ctx, vm); err != nil {
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
	if err := c.kube.Lifecycle().Create(ctx, vm, spec.WaitUntilRunning, c.rollback); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "Instance " + c.payload.InstanceName() + " runs as VirtualMachine " + c.ref(vm.Name)}, nil
}

func start(ctx context.Context, c *call) (any, error) {
	vm, spec, err := c.desired(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.kube.Lifecycle().Start(ctx, vm, spec.WaitUntilRunning); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(vm.Name) + " started"}, nil
}

func stop(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.kube.Lifecycle().Stop(ctx, id); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " stopped"}, nil
}

func reboot(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.kube.Lifecycle().Reboot(ctx, id); err != nil {
		return nil, err
	}
	return success{Status: "success", Message: "VirtualMachine " + c.ref(id.Name) + " rebooted"}, nil
}

func deleteInstance(ctx context.Context, c *call) (any, error) {
	id, err := c.identity()
	if err != nil {
		return nil, err
	}
	if err := c.kube.Lifecycle().Delete(ctx, id); err != nil {
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
	if c.power != nil && c.shouldList(c.power) {
		if state, ok := c.listPowerStates(ctx, c.power, id); ok {
			return powerAnswer{Status: "success", PowerState: state}, nil
		}
	}
	state, source, err := c.kube.Lifecycle().PowerState(ctx, id)
	if err != nil {
		return nil, err
	}
	c.log.Info("status", "power_state", state, "source", source)
	return powerAnswer{Status: "success", PowerState: state}, nil
}

func statuses(ctx context.Context, c *call) (any, error) {
	states, source, err := c.kube.Lifecycle().PowerStates(ctx)
	if err != nil {
		return nil, err
	}
	c.log.Info("statuses", "vms", len(states), "source", source)
	return powerAnswer{Status: "success", PowerState: states}, nil
}
