package bolt_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// The crash test re-executes this test binary as a writer child (selected by
// crashChildEnv), kills it with SIGKILL in the middle of its stream of
// acknowledged writes, and checks the database it leaves behind.
const (
	crashChildEnv = "NIMBUS_BOLT_CRASH_CHILD" // database path; set only in the child
	crashRoundEnv = "NIMBUS_BOLT_CRASH_ROUND" // key namespace of this round

	crashRounds      = 4
	crashChildOps    = 200000 // the child stops by itself after this many writes...
	crashChildMaxDur = 60 * time.Second
	txnKeys          = 3
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		if err := crashChild(path, os.Getenv(crashRoundEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashValue is the deterministic value of write i, 0 to ~600 bytes long.
func crashValue(i int) []byte {
	return []byte(strings.Repeat("v"+strconv.Itoa(i)+".", i%97))
}

func putKey(round string, i int) string { return fmt.Sprintf("r%s/put/%07d", round, i) }

func txnKey(round string, i, j int) string { return fmt.Sprintf("r%s/txn/%07d/%d", round, i, j) }

// crashChild writes as fast as it can, alternating single Puts and multi-key
// Txns, and prints one line per acknowledged write: "put I REV" or "txn I REV".
func crashChild(path, round string) error {
	ctx, cancel := context.WithTimeout(context.Background(), crashChildMaxDur)
	defer cancel()
	s, err := bolt.Open(ctx, path)
	if err != nil {
		return err
	}
	defer s.Close()
	for i := 0; i < crashChildOps && ctx.Err() == nil; i++ {
		var (
			rev  int64
			kind string
		)
		if i%2 == 0 {
			kind = "put"
			rev, err = s.Put(ctx, putKey(round, i), crashValue(i), store.MustNotExist)
		} else {
			kind = "txn"
			ops := make([]store.Op, txnKeys)
			for j := range ops {
				ops[j] = store.Op{Key: txnKey(round, i, j), Value: crashValue(i + j), Expected: store.MustNotExist}
			}
			rev, err = s.Txn(ctx, ops)
		}
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(os.Stdout, "%s %d %d\n", kind, i, rev); err != nil {
			return err
		}
	}
	return nil
}

type ack struct {
	kind string
	i    int
	rev  int64
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary; skipped with -short")
	}
	path := filepath.Join(t.TempDir(), "nimbus.db")
	for round := range crashRounds {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			killAfter := 20 + rand.IntN(400)
			acks := runAndKill(t, path, strconv.Itoa(round), killAfter)
			verifyCrash(t, path, strconv.Itoa(round), acks)
		})
	}
}

// runAndKill starts the writer child on path, SIGKILLs it after killAfter
// acknowledgements, and returns every acknowledgement it printed.
func runAndKill(t *testing.T, path, round string, killAfter int) []ack {
	ctx, cancel := context.WithTimeout(t.Context(), crashChildMaxDur+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path, crashRoundEnv+"="+round)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once reaped

	var acks []ack
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("child printed %q", sc.Text())
		}
		i, err1 := strconv.Atoi(f[1])
		rev, err2 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("child printed %q: %v", sc.Text(), err)
		}
		acks = append(acks, ack{f[0], i, rev})
		if len(acks) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	// Lines the child printed before it died were acknowledged too.
	err = cmd.Wait()
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v after %d acks (killed %v); stderr:\n%s", err, len(acks), killed, stderr.String())
	}
	t.Logf("killed the writer after %d acknowledgements (asked for %d)", len(acks), killAfter)
	return acks
}

// verifyCrash reopens the database and checks that every acknowledged write
// is there with its value and revision and that each Txn is all or nothing.
func verifyCrash(t *testing.T, path, round string, acks []ack) {
	ctx := t.Context()
	s := openAt(t, path)
	defer s.Close()
	cur, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for _, a := range acks {
		if a.rev > cur {
			t.Errorf("acknowledged revision %d above the reopened revision %d", a.rev, cur)
		}
		last = max(last, a.i)
		switch a.kind {
		case "put":
			expectKV(t, s, putKey(round, a.i), crashValue(a.i), a.rev)
		case "txn":
			for j := range txnKeys {
				expectKV(t, s, txnKey(round, a.i, j), crashValue(a.i+j), a.rev)
			}
		default:
			t.Fatalf("unknown ack kind %q", a.kind)
		}
	}
	// The writes after the last acknowledgement (at most one was in flight)
	// may or may not be there, but a Txn never in part, and nothing beyond
	// the in-flight write.
	kvs, _, err := s.List(ctx, "r"+round+"/")
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := 0
	for _, a := range acks {
		wantKeys += map[string]int{"put": 1, "txn": txnKeys}[a.kind]
	}
	extra := len(kvs) - wantKeys
	switch next := last + 1; {
	case extra == 0:
	case next%2 == 0 && extra == 1:
		expectKV(t, s, putKey(round, next), crashValue(next), 0)
	case next%2 == 1 && extra == txnKeys:
		var rev int64
		for j := range txnKeys {
			kv := expectKV(t, s, txnKey(round, next, j), crashValue(next+j), 0)
			if j > 0 && kv.Revision != rev {
				t.Errorf("txn %d keys at revisions %d and %d", next, rev, kv.Revision)
			}
			rev = kv.Revision
		}
	default:
		t.Errorf("%d keys for %d acknowledged writes: %d extra; want 0 or the whole write %d", len(kvs), len(acks), extra, next)
	}
	if _, err := s.Put(ctx, "r"+round+"/after", nil, store.AnyRevision); err != nil {
		t.Errorf("Put after recovery: %v", err)
	}
}

func expectKV(t *testing.T, s *bolt.Store, key string, value []byte, rev int64) store.KV {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Errorf("acknowledged key %s: %v", key, err)
		return kv
	}
	if string(kv.Value) != string(value) || (rev != 0 && kv.Revision != rev) {
		t.Errorf("key %s = %d bytes at revision %d; want %d bytes at %d", key, len(kv.Value), kv.Revision, len(value), rev)
	}
	return kv
}
