// Package workload holds the code of nimbus's scale-set images: what runs
// inside an instance. The images are built into the nimbus binary and started
// by a driver as `nimbus workload <kind>`; they learn who they are from the
// environment (see the Env* constants).
//
//   - echo: HTTP on port 80 (GET / answers who served the request and who
//     asked, GET and PUT /health), an SSH-style banner on TCP port 22 and a
//     UDP echo of the same JSON on UDP port 80; plus every port of
//     EnvPorts (HTTP or HTTPS on TCP, echo on UDP). With customData or
//     commands to run, it runs them too, as the script image does.
//   - script: runs osProfile.customData (a base64 shell script, as cloud-init
//     would) with /bin/sh once, then the extension commands, then stays up
//     like a booted VM.
//
// Which image a scale set's image reference (a marketplace image, a gallery
// or custom image, a VHD) runs as is the ImageMap's choice.
package workload

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"nimbus/internal/driver"
)

// Kind is an image nimbus knows how to run.
type Kind string

// The images. Their names are the SKU of the image reference
// nimbus:workloads:<sku>:latest.
const (
	KindEcho   Kind = "echo"
	KindScript Kind = "script"
)

// Kinds lists every image kind, in the order of driver.Images.
var Kinds = []Kind{KindEcho, KindScript}

// Environment variables a driver sets for a workload.
const (
	// EnvInstanceName is the instance name, "<vmss>_<instanceId>".
	EnvInstanceName = "NIMBUS_INSTANCE_NAME"
	// EnvInstanceID is the instance id within its scale set.
	EnvInstanceID = "NIMBUS_INSTANCE_ID"
	// EnvPrivateIP is the customer address (CA) the API reports.
	EnvPrivateIP = "NIMBUS_PRIVATE_IP"
	// EnvBindIP is the address the workload must listen on: the provider
	// address (PA) for the process driver, the CA itself for netns.
	EnvBindIP = "NIMBUS_BIND_IP"
	// EnvCustomData is osProfile.customData (base64), read by the script
	// image and removed from the script's own environment.
	EnvCustomData = "NIMBUS_CUSTOM_DATA"
	// EnvPorts lists the ports the echo image serves besides its
	// defaults (FormatPorts: "tcp/443,udp/53"): the ports the instance's
	// load balancers send to.
	EnvPorts = "NIMBUS_ECHO_PORTS"
	// EnvCommands is a JSON array of shell commands run after customData
	// (the commandToExecute of extensions the image map runs).
	EnvCommands = "NIMBUS_EXTENSION_COMMANDS"
	// EnvReadyFD, when set, is a file descriptor number the workload writes
	// its readiness to: "ok\n" once it serves (or once the script started),
	// otherwise the error that stopped it. The workload closes it after
	// writing. Drivers use it to make Start return only once the instance
	// is up.
	EnvReadyFD = "NIMBUS_READY_FD"
	// EnvDir is the instance's own directory (owned by the instance's
	// uid, outside nimbus's data directory): the workload's working
	// directory and the script's HOME. Empty means "/".
	EnvDir = "NIMBUS_INSTANCE_DIR"
	// EnvConfine tells the workload how the driver confined it; see
	// Confine. Empty means not at all (the workload runs as started).
	EnvConfine = "NIMBUS_CONFINE"
	// EnvUser is the identity ("uid:gid") a workload started as root
	// with EnvConfine=root switches to before it serves or runs customer
	// code.
	EnvUser = "NIMBUS_INSTANCE_USER"
	// EnvHide lists absolute paths, separated by ":", that a confined
	// workload covers with an empty read-only tmpfs in its mount
	// namespace (nimbus's data directory).
	EnvHide = "NIMBUS_CONFINE_HIDE"
)

// Values of EnvConfine.
const (
	// ConfineRoot: the driver started the workload as root, as PID 1 of
	// new pid and mount namespaces. It mounts its own /proc, hides the
	// other instances' directories, then switches to EnvUser.
	ConfineRoot = "root"
	// ConfineUserNS: the driver (not root) started the workload in new
	// user, pid and mount namespaces with CAP_SYS_ADMIN of its user
	// namespace only (ambient). It mounts its own /proc, then re-executes
	// itself without any capability, as nimbus's own uid.
	ConfineUserNS = "userns"
)

// ReadyOK is the line a workload writes to its ready descriptor once it is up.
const ReadyOK = "ok"

// Resolve maps an image reference to the image kind that runs it. Publisher
// and offer must be nimbus and workloads, the SKU one of Kinds, the version
// "latest" or "*"; all case-insensitively. Anything else is an error wrapping
// driver.ErrUnknownImage whose message names the image and lists the
// available ones. The API calls it to validate a scale set's image at PUT
// time; drivers call it in Start.
func Resolve(img driver.Image) (Kind, error) {
	ok := strings.EqualFold(img.Publisher, "nimbus") &&
		strings.EqualFold(img.Offer, "workloads") &&
		(strings.EqualFold(img.Version, "latest") || img.Version == "*")
	if ok {
		for _, k := range Kinds {
			if strings.EqualFold(img.SKU, string(k)) {
				return k, nil
			}
		}
	}
	return "", fmt.Errorf("%w: image %q is not available; available images: %s",
		driver.ErrUnknownImage, ImageURN(img), strings.Join(driver.Images, ", "))
}

// ImageURN formats an image reference as az does, "publisher:offer:sku:version".
func ImageURN(img driver.Image) string {
	return img.Publisher + ":" + img.Offer + ":" + img.SKU + ":" + img.Version
}

// ParseKind returns the Kind named s (as given to `nimbus workload <kind>`).
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if s == string(k) {
			return k, nil
		}
	}
	return "", fmt.Errorf("workload: unknown kind %q (want echo or script)", s)
}

// DecodeCustomData decodes osProfile.customData, which must be standard
// base64 (padding optional, surrounding whitespace and line breaks ignored,
// as cloud-init accepts). An empty string decodes to an empty script.
func DecodeCustomData(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		b2, err2 := base64.RawStdEncoding.DecodeString(clean)
		if err2 != nil {
			return nil, fmt.Errorf("workload: customData is not valid base64: %w", err)
		}
		b = b2
	}
	return b, nil
}

// Config is what a workload learns about its instance from the environment.
type Config struct {
	Name       string
	InstanceID string
	// PrivateIP is the customer address reported to clients (privateIp).
	PrivateIP netip.Addr
	// BindIP is the address to listen on.
	BindIP netip.Addr
	// CustomData is the base64 script of the script image.
	CustomData string
	// Dir is the instance's own directory (EnvDir); "" means "/".
	Dir string
	// Ports are extra ports of the echo image (EnvPorts).
	Ports []Port
	// Commands run after customData (EnvCommands).
	Commands []string
}

// ConfigFromEnv reads a Config from the Env* variables through getenv
// (os.Getenv in production). BindIP is required; PrivateIP defaults to it.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Name:       getenv(EnvInstanceName),
		InstanceID: getenv(EnvInstanceID),
		CustomData: getenv(EnvCustomData),
		Dir:        getenv(EnvDir),
	}
	bind := getenv(EnvBindIP)
	if bind == "" {
		return Config{}, fmt.Errorf("workload: %s is not set", EnvBindIP)
	}
	var err error
	if c.BindIP, err = netip.ParseAddr(bind); err != nil {
		return Config{}, fmt.Errorf("workload: %s: %w", EnvBindIP, err)
	}
	if c.Ports, err = ParsePorts(getenv(EnvPorts)); err != nil {
		return Config{}, err
	}
	if cmds := getenv(EnvCommands); cmds != "" {
		if err := json.Unmarshal([]byte(cmds), &c.Commands); err != nil {
			return Config{}, fmt.Errorf("workload: %s: %w", EnvCommands, err)
		}
	}
	c.PrivateIP = c.BindIP
	if p := getenv(EnvPrivateIP); p != "" {
		if c.PrivateIP, err = netip.ParseAddr(p); err != nil {
			return Config{}, fmt.Errorf("workload: %s: %w", EnvPrivateIP, err)
		}
	}
	return c, nil
}

// ErrPrivilegedPort is wrapped by the error of a workload that could not bind
// a port below 1024 because nimbus runs without the privilege to. Its message
// names the remedies; nimbus never remaps ports silently.
var ErrPrivilegedPort = errors.New("ports below 1024 need privilege: run nimbus as root, " +
	"or give the binary the capability (setcap cap_net_bind_service=+ep $(command -v nimbus)), " +
	"or allow unprivileged low ports (sysctl net.ipv4.ip_unprivileged_port_start=0)")
