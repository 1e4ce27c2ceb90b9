package arm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
	npoll "nimbus/internal/poll"
	"nimbus/internal/store"
	"nimbus/internal/store/storetest"
)

func TestAsARMErrorStorage(t *testing.T) {
	commit := func(cause error) error {
		return fmt.Errorf("arm: commit: %w", fmt.Errorf("bolt txn: %w", &store.UnavailableError{Op: "commit", Err: cause}))
	}
	tests := []struct {
		name       string
		err        error
		status     int
		code, text string
	}{
		{"disk full", commit(&fs.PathError{Op: "write", Path: "/d/nimbus.db", Err: syscall.ENOSPC}), 507, "InsufficientStorage", "disk is full"},
		{"quota", commit(&fs.PathError{Op: "write", Path: "/d/nimbus.db", Err: syscall.EDQUOT}), 507, "InsufficientStorage", "disk is full"},
		{"disk full formatted with %s", commit(errors.New("file resize error: no space left on device")), 507, "InsufficientStorage", "disk is full"},
		{"no reserve", &store.UnavailableError{Op: "reserve", Err: syscall.ENOSPC}, 507, "InsufficientStorage", "disk is full"},
		{"read-only", commit(&fs.PathError{Op: "write", Path: "/d/nimbus.db", Err: syscall.EROFS}), 503, "StorageUnavailable", "(read-only file system)"},
		{"I/O error", commit(&fs.PathError{Op: "sync", Path: "/d/nimbus.db", Err: syscall.EIO}), 503, "StorageUnavailable", "(input/output error)"},
		{"cannot reopen", &store.UnavailableError{Op: "open", Err: errors.New("timeout")}, 503, "StorageUnavailable", "(open failed)"},
		{"other", errors.New("boom"), 500, "InternalServerError", "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := arm.AsARMError(tc.err)
			if e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.text) {
				t.Fatalf("AsARMError(%v) = %d %s %q; want %d %s containing %q", tc.err, e.Status, e.Code, e.Message, tc.status, tc.code, tc.text)
			}
			if strings.Contains(e.Message, "/d/") {
				t.Fatalf("message %q shows a server path", e.Message)
			}
		})
	}
}

// TestDiskFullNode runs a real node with its data dir on a small tmpfs
// (root only), fills the disk, and checks the API: writes answer 507
// InsufficientStorage, never a 500; reads keep working; deletes still
// succeed; writes resume without a restart once space is freed; and a
// restart finds every acknowledged write.
func TestDiskFullNode(t *testing.T) {
	dir := storetest.Tmpfs(t, 48<<20)
	n := armtest.Start(t, dir)
	n.Group("rg")
	pip := func(i int) string {
		return n.RGPath("rg", fmt.Sprintf("Microsoft.Network/publicIPAddresses/p%03d", i)) + pipAPI
	}
	tags := map[string]string{}
	for i := range 10 {
		tags[fmt.Sprintf("pad%d", i)] = strings.Repeat("x", 250)
	}
	body := map[string]any{"location": "eastus", "tags": tags}
	var acked []int
	for i := range 10 {
		if st, _, b := n.Do("PUT", pip(i), body); st != http.StatusCreated {
			t.Fatalf("put %d before the disk is full: %d %s", i, st, b)
		}
		acked = append(acked, i)
	}

	removeFiller := storetest.Fill(t, dir)
	wantFull := func(what string, st int, h http.Header, b []byte) {
		t.Helper()
		if st != http.StatusInsufficientStorage || armtest.ErrCode(b) != "InsufficientStorage" || h.Get("x-ms-error-code") != "InsufficientStorage" {
			t.Fatalf("%s on a full disk: %d %s; want 507 InsufficientStorage", what, st, b)
		}
	}
	next, full := len(acked), false
	for ; next < 2000 && !full; next++ {
		st, h, b := n.Do("PUT", pip(next), body)
		switch st {
		case http.StatusCreated:
			acked = append(acked, next)
		default:
			wantFull("put", st, h, b)
			full = true
		}
	}
	if !full {
		t.Fatalf("%d puts on a full disk all succeeded", next)
	}
	st, h, b := n.Do("PUT", pip(next), body)
	wantFull("put again", st, h, b)

	// Reads keep working.
	for _, i := range acked {
		if st, _, b := n.Do("GET", pip(i), nil); st != http.StatusOK {
			t.Fatalf("get %d on a full disk: %d %s", i, st, b)
		}
	}
	st, _, b = n.Do("GET", n.RGPath("rg", "Microsoft.Network/publicIPAddresses")+pipAPI, nil)
	var list struct{ Value []json.RawMessage }
	if err := json.Unmarshal(b, &list); st != http.StatusOK || err != nil || len(list.Value) != len(acked) {
		t.Fatalf("list on a full disk: %d, %d items (want %d) %v", st, len(list.Value), len(acked), err)
	}

	// Deletes still work, and their operations finish.
	gone := acked[len(acked)-1]
	acked = acked[:len(acked)-1]
	st, h, b = n.Do("DELETE", pip(gone), nil)
	if st != http.StatusAccepted {
		t.Fatalf("delete on a full disk: %d %s; want 202", st, b)
	}
	async := h.Get("Azure-AsyncOperation")
	npoll.Until(t, 10*time.Second, "the delete's operation to succeed", func() error {
		st, _, b := n.Do("GET", async, nil)
		var op struct{ Status string }
		if err := json.Unmarshal(b, &op); st != http.StatusOK || err != nil || op.Status != "Succeeded" {
			return fmt.Errorf("%d %s", st, b)
		}
		return nil
	})
	if st, _, b := n.Do("GET", pip(gone), nil); st != http.StatusNotFound {
		t.Fatalf("get of the deleted address: %d %s", st, b)
	}

	// Space freed: writes resume on the running node.
	removeFiller()
	for i := next; i < next+3; i++ {
		if st, _, b := n.Do("PUT", pip(i), body); st != http.StatusCreated {
			t.Fatalf("put %d after space was freed: %d %s", i, st, b)
		}
		acked = append(acked, i)
	}

	// A restart finds every acknowledged write.
	n.Shutdown()
	n = armtest.Start(t, dir)
	for _, i := range acked {
		if st, _, b := n.Do("GET", pip(i), nil); st != http.StatusOK {
			t.Fatalf("get %d after restart: %d %s", i, st, b)
		}
	}
	if st, _, _ := n.Do("GET", pip(gone), nil); st != http.StatusNotFound {
		t.Fatalf("the deleted address is back after restart: %d", st)
	}
	if _, err := os.Stat(dir + "/nimbus.db.reserve"); err != nil {
		t.Fatalf("reserve not restored: %v", err)
	}
}
