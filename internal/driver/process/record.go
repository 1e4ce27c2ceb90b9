package process

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/workload"
)

// record is what the driver persists per instance, one JSON file each in
// <StateDir>/instances. It is enough to find the process again after a
// restart of nimbus and to tell it apart from an unrelated process that got
// the same PID (StartTicks).
type record struct {
	Key        string              `json:"key"`
	Spec       driver.InstanceSpec `json:"spec"`
	Kind       workload.Kind       `json:"kind"`
	ProviderIP netip.Addr          `json:"providerIp"`
	State      driver.State        `json:"state"`
	PID        int                 `json:"pid,omitempty"`
	// StartTicks is field 22 of /proc/<pid>/stat, the process start time in
	// clock ticks since boot: PID plus StartTicks name one process.
	StartTicks uint64 `json:"startTicks,omitempty"`
	// BootID is the machine's boot the process ran in: after a reboot no
	// recorded process can be alive, whatever its PID.
	BootID    string    `json:"bootId,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	ExitCode  int       `json:"exitCode"`
	Message   string    `json:"message,omitempty"`
	// User is the host identity the workload runs as; nil in records of
	// a nimbus that did not record it.
	User *driver.User `json:"user,omitempty"`
}

func (r *record) status() driver.Status {
	st := driver.Status{
		Key:        r.Key,
		State:      r.State,
		ProviderIP: r.ProviderIP,
		PrivateIP:  r.Spec.PrivateIP,
		PID:        r.PID,
		StartedAt:  r.StartedAt,
		ExitCode:   r.ExitCode,
		Message:    r.Message,
		UID:        -1,
		GID:        -1,
	}
	if r.User != nil {
		st.UID, st.GID = r.User.UID, r.User.GID
	}
	return st
}

// fileID names an instance's files: keys contain slashes and may be long.
func fileID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

const (
	instancesDir = "instances"
	logsDir      = "logs"
	lockName     = "lock"
)

func (d *Driver) recordPath(key string) string {
	return filepath.Join(d.opts.StateDir, instancesDir, fileID(key)+".json")
}

// LogPath is the file that receives the standard output and error of the
// instance key's workload (truncated at each start; removed by Destroy).
func (d *Driver) LogPath(key string) string {
	return filepath.Join(d.opts.StateDir, logsDir, fileID(key)+".log")
}

// save writes r atomically: a temporary file in the same directory, fsync,
// rename over the old record, fsync of the directory.
func (d *Driver) save(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("process: encode record %s: %w", r.Key, err)
	}
	path := d.recordPath(r.Key)
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("process: save record %s: %w", r.Key, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	df, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer df.Close()
	return df.Sync()
}

// forget removes an instance's record and log.
func (d *Driver) forget(key string) error {
	if err := os.Remove(d.recordPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("process: remove record %s: %w", key, err)
	}
	if err := os.Remove(d.LogPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("process: remove log %s: %w", key, err)
	}
	return nil
}

// loadRecords reads every record of the state directory, skipping (and
// logging) unreadable ones and leftover temporary files.
func (d *Driver) loadRecords() ([]*record, error) {
	dir := filepath.Join(d.opts.StateDir, instancesDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("process: read state: %w", err)
	}
	var recs []*record
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("process: read state: %w", err)
		}
		r := new(record)
		if err := json.Unmarshal(b, r); err != nil || r.Key == "" || fileID(r.Key)+".json" != name {
			d.log.Warn("skipping unreadable instance record", "file", name, "err", err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// lastLine returns the last non-empty line of the file at path, at most
// max bytes of it, or "" if there is none.
func lastLine(path string, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4096
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - tail
	if off < 0 {
		off = 0
	}
	buf := make([]byte, tail)
	n, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\r\n"), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > max {
		line = line[:max] + "..."
	}
	return line
}
