// Package driver defines how nimbus runs scale-set instances. A Driver turns
// an InstanceSpec into a running workload (a supervised process group, a
// network namespace, later a microVM) and reports its state. Every driver
// must pass the suite in driver/drivertest.
package driver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) by Inspect for an unknown instance. Stop
// and Destroy of a missing instance succeed: they are idempotent.
var ErrNotFound = errors.New("driver: instance not found")

// ErrNotSupported is returned (wrapped) when a driver cannot do what is asked on
// this machine (for example the netns driver without root). Its message says
// why and what is needed.
var ErrNotSupported = errors.New("driver: not supported")

// ErrUnknownImage is returned (wrapped) by Start for an image no driver knows.
var ErrUnknownImage = errors.New("driver: unknown image")

// Image names a workload, from a scale set's imageReference.
type Image struct {
	Publisher string // "nimbus"
	Offer     string // "workloads"
	SKU       string // "echo" | "script"
	Version   string // "latest"
}

// Images lists the images every driver runs, as "publisher:offer:sku:version".
var Images = []string{"nimbus:workloads:echo:latest", "nimbus:workloads:script:latest"}

// InstanceSpec is everything a driver needs to run one instance.
type InstanceSpec struct {
	// Key identifies the instance across restarts and must be unique in the
	// driver, e.g. "<subscription>/<group>/<vmss>/<instanceId>" (lowercase).
	Key string
	// Name is the instance name, "<vmss>_<instanceId>".
	Name         string
	InstanceID   string
	ComputerName string
	Image        Image
	// CustomData is osProfile.customData (base64), used by the script image.
	CustomData string
	// PrivateIP is the customer address (CA) from the subnet, as the API reports it.
	PrivateIP netip.Addr
	// Subnet is the subnet prefix; Gateway its first usable address.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Env is extra environment for the workload.
	Env map[string]string
}

// State is an instance's run state as a driver sees it.
type State string

// Instance states.
const (
	StateRunning State = "running"
	StateStopped State = "stopped" // stopped on purpose (Stop)
	StateExited  State = "exited"  // the workload ended on its own (crash, exit)
)

// Status is what Inspect and List report.
type Status struct {
	Key   string
	State State
	// ProviderIP is where the instance is reachable from nimbus's data plane:
	// a loopback address for the process driver (the CA mapped 1:1), the CA
	// itself for netns.
	ProviderIP netip.Addr
	PrivateIP  netip.Addr
	PID        int
	StartedAt  time.Time
	ExitCode   int
	// Message explains a non-running state (exit error, signal).
	Message string
	// UID and GID are the host identity the workload (and everything it
	// starts: the customData script) runs as; both -1 when unknown (an
	// instance recorded by a nimbus that did not record them).
	UID, GID int
}

// User is a host identity instances run as: a uid and a gid, never 0 (no
// instance runs as root), with no supplementary groups.
type User struct {
	UID, GID int
}

// DefaultUser is the identity instances run as when nimbus runs as root and
// no other is configured: nobody/nogroup (65534), owning no file of the host.
var DefaultUser = User{UID: 65534, GID: 65534}

// String formats u as "uid:gid".
func (u User) String() string { return strconv.Itoa(u.UID) + ":" + strconv.Itoa(u.GID) }

// ParseUser parses an instance identity: a user name or a numeric uid,
// optionally followed by ":" and a group name or a numeric gid. Without a
// group, a name uses the user's primary group and a uid the gid of the same
// number. Names are looked up in the host's user database. Root (uid or gid
// 0) is refused: instances never run as root.
func ParseUser(s string) (User, error) {
	name, group, hasGroup := strings.Cut(strings.TrimSpace(s), ":")
	if name == "" || hasGroup && group == "" {
		return User{}, fmt.Errorf("instance user %q: want NAME or UID, optionally :GROUP or :GID", s)
	}
	var u User
	if n, err := strconv.Atoi(name); err == nil {
		u = User{UID: n, GID: n}
	} else {
		pw, err := user.Lookup(name)
		if err != nil {
			return User{}, fmt.Errorf("instance user %q: %w", s, err)
		}
		if u.UID, err = strconv.Atoi(pw.Uid); err != nil {
			return User{}, fmt.Errorf("instance user %q: uid %q is not numeric", s, pw.Uid)
		}
		if u.GID, err = strconv.Atoi(pw.Gid); err != nil {
			return User{}, fmt.Errorf("instance user %q: gid %q is not numeric", s, pw.Gid)
		}
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			u.GID = n
		} else {
			gr, err := user.LookupGroup(group)
			if err != nil {
				return User{}, fmt.Errorf("instance user %q: %w", s, err)
			}
			if u.GID, err = strconv.Atoi(gr.Gid); err != nil {
				return User{}, fmt.Errorf("instance user %q: gid %q is not numeric", s, gr.Gid)
			}
		}
	}
	if u.UID <= 0 || u.GID <= 0 || u.UID > 1<<31-2 || u.GID > 1<<31-2 {
		return User{}, fmt.Errorf("instance user %q: uid and gid must be positive (instances never run as root), got %s", s, u)
	}
	return u, nil
}

// Driver runs instances. Implementations are safe for concurrent use.
//
// Start is idempotent per Key: starting a running instance returns its status.
// Stop ends the workload (SIGTERM then SIGKILL after the timeout from ctx or a
// driver default) and keeps its record; Destroy ends it and forgets it,
// releasing its addresses. Both succeed for unknown keys.
// List reports every instance the driver has a record of, including ones
// started by an earlier nimbus process (recovered from the driver's state
// directory): that is how instances are re-adopted after a restart.
type Driver interface {
	Start(ctx context.Context, spec InstanceSpec) (Status, error)
	Stop(ctx context.Context, key string) error
	Destroy(ctx context.Context, key string) error
	Inspect(ctx context.Context, key string) (Status, error)
	List(ctx context.Context) ([]Status, error)
}

// Capabilities describes what a driver offers.
type Capabilities struct {
	// RealAddresses is true when instances own their private IP for real
	// (netns, microvm); false when it is mapped to a ProviderIP (process).
	RealAddresses bool
	// PreservesClientIP is true when the data plane can deliver the client's
	// own address to the instance.
	PreservesClientIP bool
}

// Describer is implemented by drivers that report capabilities.
type Describer interface {
	Capabilities() Capabilities
	Name() string
}

// Closer is implemented by drivers holding resources beyond instances.
// Close with stopAll true stops every instance (clean nimbus shutdown with
// teardown); false leaves them running for re-adoption.
type Closer interface {
	Close(ctx context.Context, stopAll bool) error
}
