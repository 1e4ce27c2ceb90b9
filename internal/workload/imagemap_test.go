package workload

// Address plan: the echo servers under test bind 127.100.250.10-19
// (loopback); nothing else is sent traffic.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/poll"
)

func TestDefaultImageMap(t *testing.T) {
	m := DefaultImageMap()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		ref    ImageRef
		entry  string
		kind   Kind
		os     string
		runsCD bool
	}{
		{"nimbus echo", ImageRef{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "latest"}, "nimbus-echo", KindEcho, OSLinux, false},
		{"nimbus script", ImageRef{Publisher: "Nimbus", Offer: "Workloads", SKU: "SCRIPT", Version: "*"}, "nimbus-script", KindScript, OSLinux, true},
		{"ubuntu 22.04", ImageRef{Publisher: "Canonical", Offer: "0001-com-ubuntu-server-jammy", SKU: "22_04-lts-gen2", Version: "latest"}, "linux", KindEcho, OSLinux, false},
		{"ubuntu 24.04 pinned", ImageRef{Publisher: "Canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "24.04.202404230"}, "linux", KindEcho, OSLinux, false},
		{"debian 12", ImageRef{Publisher: "Debian", Offer: "debian-12", SKU: "12-gen2", Version: "latest"}, "linux", KindEcho, OSLinux, false},
		{"windows 2022", ImageRef{Publisher: "MicrosoftWindowsServer", Offer: "WindowsServer", SKU: "2022-datacenter-g2", Version: "latest"}, "windows", KindEcho, OSWindows, false},
		{"sql server", ImageRef{Publisher: "MicrosoftSQLServer", Offer: "sql2019-ws2019", SKU: "sqldev", Version: "latest"}, "windows", KindEcho, OSWindows, false},
		{"gallery image", ImageRef{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/web/versions/1.0.0"}, "linux", KindEcho, OSLinux, false},
		{"custom windows image", ImageRef{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/win", OSType: "Windows"}, "windows", KindEcho, OSWindows, false},
		{"shared gallery", ImageRef{SharedGalleryImageID: "/SharedGalleries/g/Images/i/Versions/latest"}, "linux", KindEcho, OSLinux, false},
		{"community gallery", ImageRef{CommunityGalleryImageID: "/CommunityGalleries/c/Images/i/Versions/latest"}, "linux", KindEcho, OSLinux, false},
		{"vhd", ImageRef{URI: "https://account.blob.core.windows.net/vhds/linux.vhd", OSType: "Linux"}, "linux", KindEcho, OSLinux, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := m.Map(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name != tt.entry || e.Workload != tt.kind || tt.ref.OS() != tt.os || e.RunsCustomData() != tt.runsCD || e.RunsExtensions() {
				t.Fatalf("Map = %+v (os %s); want entry %s, %s, os %s, customData run %v", e, tt.ref.OS(), tt.entry, tt.kind, tt.os, tt.runsCD)
			}
			if _, err := Resolve(e.Image()); err != nil {
				t.Fatalf("the mapped image does not run: %v", err)
			}
		})
	}
	if _, err := m.Map(ImageRef{}); !errors.Is(err, ErrImageNotMapped) {
		t.Fatalf("Map of no image = %v; want ErrImageNotMapped", err)
	}
}

func TestImageMapFile(t *testing.T) {
	const src = `{"images": [
		{"name": "web", "match": {"publisher": "Canonical", "offer": "*jammy*"}, "workload": "script", "extensions": "run"},
		{"name": "gallery", "match": {"id": "*/galleries/prod/*"}, "workload": "echo", "customData": "run"}
	]}`
	dir := t.TempDir()
	p := filepath.Join(dir, ImageMapFile)
	if m, err := LoadImageMap(p); err != nil || len(m.Images) != len(DefaultImageMap().Images) {
		t.Fatalf("LoadImageMap of a missing file = %v, %v; want the default", m, err)
	}
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadImageMap(p)
	if err != nil {
		t.Fatal(err)
	}
	jammy := ImageRef{Publisher: "canonical", Offer: "0001-com-ubuntu-server-jammy", SKU: "22_04-lts", Version: "latest"}
	if e, err := m.Map(jammy); err != nil || e.Name != "web" || !e.RunsCustomData() || !e.RunsExtensions() {
		t.Fatalf("Map(jammy) = %+v, %v", e, err)
	}
	prod := ImageRef{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/prod/images/i/versions/2.0.0"}
	if e, err := m.Map(prod); err != nil || e.Name != "gallery" || !e.RunsCustomData() || e.RunsExtensions() {
		t.Fatalf("Map(prod gallery) = %+v, %v", e, err)
	}
	// Every form of an image no entry matches is refused alike.
	for _, r := range []ImageRef{
		{Publisher: "Canonical", Offer: "UbuntuServer", SKU: "18.04-LTS", Version: "latest"},
		{ID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/dev/images/i"},
		{URI: "https://a.blob.core.windows.net/vhds/x.vhd"},
	} {
		_, err := m.Map(r)
		if !errors.Is(err, ErrImageNotMapped) || !errors.Is(err, driver.ErrUnknownImage) || !strings.Contains(err.Error(), r.String()) ||
			!strings.Contains(err.Error(), "web, gallery") {
			t.Errorf("Map(%s) = %v; want ErrImageNotMapped naming the image and the entries", r, err)
		}
	}
	for name, bad := range map[string]string{
		"unknown field":    `{"images": [{"name": "x", "workload": "echo", "color": "red"}]}`,
		"no name":          `{"images": [{"workload": "echo"}]}`,
		"unknown workload": `{"images": [{"name": "x", "workload": "nginx"}]}`,
		"bad customData":   `{"images": [{"name": "x", "workload": "echo", "customData": "maybe"}]}`,
		"bad os":           `{"images": [{"name": "x", "workload": "echo", "match": {"os": "Plan9"}}]}`,
	} {
		if _, err := ParseImageMap([]byte(bad)); err == nil {
			t.Errorf("%s: ParseImageMap accepted %s", name, bad)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"", "anything", true}, {"*", "", true}, {"*", "a/b", true}, {"Canonical", "canonical", true},
		{"Canonical", "Canonicals", false}, {"*jammy*", "0001-com-ubuntu-server-jammy", true},
		{"*/galleries/prod/*", "/s/g/galleries/prod/images/i", true}, {"*/galleries/prod/*", "/s/g/galleries/dev/images/i", false},
		{"2022-?atacenter", "2022-Datacenter", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
	} {
		if got := glob(tt.p, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v; want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestPorts(t *testing.T) {
	ps := []Port{{ProtoUDP, 53}, {ProtoTCP, 443}, {ProtoTCP, 3389}, {ProtoTCP, 443}}
	s := FormatPorts(ps)
	if s != "tcp/3389,tcp/443,udp/53" {
		t.Fatalf("FormatPorts = %q", s)
	}
	got, err := ParsePorts(s)
	if err != nil || len(got) != 3 {
		t.Fatalf("ParsePorts(%q) = %v, %v", s, got, err)
	}
}

// TestEchoExtraPorts serves the ports a load balancer would send to: HTTP
// and HTTPS on the same TCP port, and UDP.
func TestEchoExtraPorts(t *testing.T) {
	needLowPorts(t)
	const bind = "127.100.250.10"
	e := &Echo{Config: Config{Name: "web_9", InstanceID: "9", PrivateIP: netip.MustParseAddr("198.18.0.9"), BindIP: netip.MustParseAddr(bind)},
		Ports: []Port{{ProtoTCP, 3389}, {ProtoTCP, 443}, {ProtoTCP, 22}, {ProtoUDP, 5353}, {ProtoTCP, 80}}}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- e.Serve(ctx, func() { close(ready) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed, as probes accept
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	for _, u := range []string{"http://" + bind + ":3389/health", "http://" + bind + ":443/", "https://" + bind + ":443/health", "https://" + bind + ":3389/"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", u, resp.StatusCode)
		}
	}
	c, err := net.DialTimeout("tcp", bind+":22", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "SSH-2.0-nimbus web_9\r\n" {
		t.Fatalf("port 22 = %q, %v; want the SSH banner", line, err)
	}
	u, err := net.Dial("udp", bind+":5353")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(u, "ping")
	buf := make([]byte, 2048)
	n, err := u.Read(buf)
	var r EchoReply
	if err != nil || json.Unmarshal(buf[:n], &r) != nil || r.Name != "web_9" {
		t.Fatalf("udp/5353 = %q, %v", buf[:n], err)
	}
}

// TestEchoRunsCustomData runs the echo image with customData and an
// extension command, as an image map entry with customData and extensions
// "run" makes it: the ports serve and both programs run, in order.
func TestEchoRunsCustomData(t *testing.T) {
	needLowPorts(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cd := base64.StdEncoding.EncodeToString([]byte("echo customdata >> " + out + "\n"))
	cmds, _ := json.Marshal([]string{"echo extension >> " + out})
	env := map[string]string{EnvBindIP: "127.100.250.11", EnvInstanceName: "web_10", EnvCustomData: cd, EnvCommands: string(cmds), EnvPorts: "tcp/8080"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, "echo", func(k string) string { return env[k] }, []string{"PATH=/usr/bin:/bin"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Main: %v", err)
		}
	}()
	poll.Until(t, 10*time.Second, "customData, then the extension command, to run", func() error {
		b, _ := os.ReadFile(out)
		if string(b) != "customdata\nextension\n" {
			return fmt.Errorf("%s holds %q", out, b)
		}
		return nil
	})
	poll.Until(t, 10*time.Second, "port 8080 to answer", func() error {
		resp, err := http.Get("http://127.100.250.11:8080/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}
