// Package node assembles one running nimbus server: it opens the store in
// the data directory, loads or creates the identity, CA, server certificate
// and token key, builds the ARM handler, listens with TLS and runs the
// background components (operation sweeper, and whatever Config.Components
// adds: controllers, driver, data plane) under one errgroup.
//
// Data directory: Config.DataDir, by default $NIMBUS_DATA_DIR or
// ~/.local/share/nimbus (DefaultDataDir). It holds nimbus.db (the store),
// the files of the auth package (ca.pem, server.pem, token-key.pem,
// identity.json, ...) and endpoint.json, which tells clients where and how
// to connect (EndpointFile).
package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/netutil"
	"golang.org/x/sync/errgroup"

	"nimbus/internal/arm"
	"nimbus/internal/auth"
	"nimbus/internal/deployments"
	"nimbus/internal/portal"
	"nimbus/internal/rp/compute"
	"nimbus/internal/rp/insights"
	"nimbus/internal/rp/network"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
	"nimbus/internal/workload"
)

// DefaultListen is the default ARM listen address.
const DefaultListen = "127.0.0.1:8443"

// StoreFile is the store's file name in the data directory.
const StoreFile = "nimbus.db"

// EndpointFile is the name of the connection description in the data directory.
const EndpointFile = "endpoint.json"

// Component is a background part of the node (controller, driver, data
// plane). Run blocks until ctx ends or it fails; an error stops the node.
type Component interface {
	Run(ctx context.Context) error
}

// ComponentFunc builds a component once the node's store and ARM server exist.
type ComponentFunc func(n *Node) (Component, error)

// Config configures a node. The zero value of every field has a default.
type Config struct {
	// DataDir holds the store, keys and endpoint.json (default DefaultDataDir()).
	DataDir string
	// Listen is the HTTPS address (default DefaultListen; port 0 picks one).
	Listen string
	// ListenFunc opens the API's listener on Listen (nil: net.Listen). A
	// rootless nimbus opens it on the host's loopback through its parent.
	ListenFunc func(network, address string) (net.Listener, error)
	// PublicPool is the public IP pool (default arm.DefaultPublicPool).
	PublicPool netip.Prefix
	// Logger receives logs (nil discards).
	Logger *slog.Logger
	// Store, if set, is used instead of opening DataDir/nimbus.db; the node does not close it.
	Store store.Store
	// OpenStore, if set and Store is nil, opens the store instead of
	// DataDir/nimbus.db (serve --store etcd sets it); log is the node's
	// logger. The node owns what it returns and closes it when it stops.
	OpenStore func(ctx context.Context, log *slog.Logger) (store.Store, error)
	// Components are built after the server and run until the node stops.
	Components []ComponentFunc
	// Runtime is handed to the ARM server (see arm.Runtime); nil serves
	// the API from the store alone.
	Runtime arm.Runtime
	// MaxConns caps the API's simultaneous connections (netutil.
	// LimitListener: further ones wait in the listen backlog), so the API
	// keeps descriptors of its own whatever else the process holds; 0 means
	// no cap.
	MaxConns int
	// UnservedTypes is arm.Config.UnservedTypes ("" refuses types nimbus
	// does not serve).
	UnservedTypes string
	// Images maps scale sets' images to nimbus workloads. Nil: read
	// ImageMapFile, or DataDir/images.json (workload.ImageMapFile) when
	// it exists, else workload.DefaultImageMap.
	Images *workload.ImageMap
	// ImageMapFile is the image map to read when Images is nil; it must
	// exist. "" means DataDir/images.json, which may be absent.
	ImageMapFile string
}

// Endpoint is the content of endpoint.json: everything a client needs.
type Endpoint struct {
	Endpoint       string `json:"endpoint"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	CAFile         string `json:"caFile"`
	MSIEndpoint    string `json:"msiEndpoint"`
	IdentityHeader string `json:"identityHeader"`
	// ClientID is the service principal for az login --service-principal
	// and client-secret credentials; its secret is IdentityHeader.
	ClientID         string `json:"clientId"`
	MetadataEndpoint string `json:"metadataEndpoint"`
	Audience         string `json:"audience"`
	DataDir          string `json:"dataDir"`
}

// Node is a running nimbus server. Its fields are set by Start and read-only.
type Node struct {
	// Server is the ARM handler.
	Server *arm.Server
	// Store is the node's store.
	Store store.Store
	// Issuer mints and verifies tokens.
	Issuer *auth.Issuer
	// Identity is the tenant, default subscription and MSI secret.
	Identity auth.Identity
	// Endpoint describes how to connect (also written to endpoint.json).
	Endpoint Endpoint
	// Portal is the web portal, served under portal.Prefix on the same listener.
	Portal *portal.Portal
	// Addr is the address the HTTPS listener is bound to.
	Addr net.Addr
	// Logger is the node's logger.
	Logger *slog.Logger
	// Images is the image map the compute provider uses (Config.Images
	// or the one read at start); controllers use the same.
	Images *workload.ImageMap

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// DefaultDataDir returns $NIMBUS_DATA_DIR, or ~/.local/share/nimbus.
func DefaultDataDir() string {
	if d := os.Getenv("NIMBUS_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "nimbus")
	}
	return filepath.Join(home, ".local", "share", "nimbus")
}

// Start brings a node up and returns once it is listening. Stop it with Stop
// (or by cancelling ctx, then Wait).
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.Images == nil {
		p := cfg.ImageMapFile
		if p == "" {
			p = filepath.Join(cfg.DataDir, workload.ImageMapFile)
		} else if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("node: image map: %w", err)
		}
		m, err := workload.LoadImageMap(p)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		cfg.Images = m
	}
	owner, err := dataDirOwner(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen address %q: %w", cfg.Listen, err)
	}
	id, err := auth.LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	iss, err := auth.LoadOrCreateIssuer(cfg.DataDir, id.TenantID)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// The store's file lock makes this process the data directory's only
	// server before it creates any TLS material there (with OpenStore the
	// store has no such lock: each node needs a data directory of its own).
	st, ownStore := cfg.Store, false
	if st == nil && cfg.OpenStore != nil {
		if st, err = cfg.OpenStore(ctx, log); err != nil {
			return nil, fmt.Errorf("node: open store: %w", err)
		}
		ownStore = true
	} else if st == nil {
		if st, err = bolt.Open(ctx, filepath.Join(cfg.DataDir, StoreFile), bolt.WithLogger(log)); err != nil {
			return nil, fmt.Errorf("node: open store: %w", err)
		}
		ownStore = true
	}
	closeStore := func() {}
	if ownStore {
		closeStore = func() {
			if cerr := st.Close(); cerr != nil {
				log.Warn("close store", slog.Any("err", cerr))
			}
		}
	}
	hosts := certHosts(host)
	cert, err := auth.ServerTLS(cfg.DataDir, hosts)
	if err != nil {
		closeStore()
		return nil, fmt.Errorf("node: %w", err)
	}
	n, err := start(ctx, cfg, log, st, id, iss, cert, host, owner, closeStore)
	if err != nil {
		closeStore()
	}
	return n, err
}

func start(ctx context.Context, cfg Config, log *slog.Logger, st store.Store, id auth.Identity, iss *auth.Issuer, cert tls.Certificate, host string, owner uint32, closeStore func()) (*Node, error) {
	srv, err := arm.New(arm.Config{Store: st, Tokens: iss, Identity: id, PublicPool: cfg.PublicPool, Logger: log, Runtime: cfg.Runtime,
		TrustedUIDs: []uint32{owner}, UnservedTypes: cfg.UnservedTypes})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// The resource providers, registered explicitly: Resource Manager
	// routes to them as Azure's does.
	deployments.Register(srv)
	compute.Register(srv, compute.Options{Images: cfg.Images})
	network.Register(srv, compute.Membership{})
	insights.Register(srv)
	if err := srv.EnsureSubscription(ctx); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	listen := cfg.ListenFunc
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.MaxConns > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConns)
	}
	pt, err := portal.New(portal.Config{API: srv, Tokens: iss, DataDir: cfg.DataDir,
		SubscriptionID: id.SubscriptionID, TenantID: id.TenantID, Logger: log})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{Server: srv, Store: st, Issuer: iss, Identity: id, Portal: pt, Addr: ln.Addr(), Logger: log, Images: cfg.Images, done: make(chan struct{})}
	port := ln.Addr().(*net.TCPAddr).Port
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	base := "https://" + net.JoinHostPort(host, fmt.Sprint(port))
	n.Endpoint = Endpoint{
		Endpoint: base, SubscriptionID: id.SubscriptionID, TenantID: id.TenantID,
		CAFile: filepath.Join(absDir(cfg.DataDir), auth.CAFile), MSIEndpoint: base + "/msi/token",
		IdentityHeader: id.IdentityHeader, ClientID: auth.ObjectID, MetadataEndpoint: base + "/metadata/endpoints?api-version=2015-01-01",
		Audience: auth.DefaultAudience, DataDir: absDir(cfg.DataDir),
	}
	comps := []Component{srv.Ops}
	for _, f := range cfg.Components {
		c, err := f(n)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("node: build component: %w", err)
		}
		comps = append(comps, c)
	}
	b, err := json.MarshalIndent(n.Endpoint, "", "  ")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := auth.WriteFileAtomic(filepath.Join(cfg.DataDir, EndpointFile), append(b, '\n'), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	hs := &http.Server{
		Handler:           withPortal(pt, srv),
		TLSConfig:         auth.ServerTLSConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	n.cancel = cancel
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error {
		err := hs.ServeTLS(ln, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("node: serve: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
		defer scancel()
		if err := hs.Shutdown(sctx); err != nil {
			// Connections still busy after the grace period are cut.
			log.Warn("forced shutdown of lingering connections", slog.Any("err", err))
			return hs.Close()
		}
		return nil
	})
	for _, c := range comps {
		g.Go(func() error { return c.Run(gctx) })
	}
	go func() {
		n.err = g.Wait()
		stop()
		cancel()
		closeStore()
		close(n.done)
	}()
	log.Info("nimbus listening", slog.String("endpoint", base), slog.String("dataDir", cfg.DataDir))
	return n, nil
}

// withPortal serves the portal's paths (portal.Prefix, and /portal itself)
// and hands everything else to the ARM handler untouched.
func withPortal(pt, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/portal" || strings.HasPrefix(p, portal.Prefix) {
			pt.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// certHosts returns the names the server certificate must cover besides
// loopback (docs/operations.md, TLS): the listen host when it is a specific
// address or name, nothing more when listening on all addresses (clients
// beyond loopback are expected to use a --listen address they can name).
func certHosts(host string) []string {
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		return nil
	}
	return []string{host}
}

// dataDirOwner returns the uid owning dir: the local user, besides root,
// whom the managed-identity endpoint serves (arm.Config.TrustedUIDs).
func dataDirOwner(dir string) (uint32, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("owner of data directory %s: unknown on this system", dir)
	}
	return st.Uid, nil
}

func absDir(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// Stop shuts the node down and waits for every component and the listener.
func (n *Node) Stop() error {
	n.cancel()
	return n.Wait()
}

// Wait blocks until the node has stopped and returns the first component error.
func (n *Node) Wait() error {
	<-n.done
	return n.err
}

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Run starts a node and blocks until ctx ends or a component fails.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return n.Wait()
}

// ReadEndpoint reads DIR/endpoint.json.
func ReadEndpoint(dir string) (Endpoint, error) {
	var e Endpoint
	b, err := os.ReadFile(filepath.Join(dir, EndpointFile))
	if err != nil {
		return e, fmt.Errorf("node: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("node: %s: %w", EndpointFile, err)
	}
	return e, nil
}
