package monitor

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture nimbus runs on.
const clockTicks = 100

// procStat is what the sampler reads from /proc/<pid>/stat.
type procStat struct {
	pgrp int
	// ticks is utime+stime+cutime+cstime: the process's CPU time and
	// that of its children it has waited for.
	ticks uint64
}

// parseStat parses a /proc/<pid>/stat line. The command (field 2) is in
// parentheses and may contain spaces and parentheses: fields are counted
// after its last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command field")
	}
	// Fields after the command, 1-based from field 3 (state).
	var st procStat
	field := 3
	rest := b[i+1:]
	for len(rest) > 0 && field <= 17 {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		tok := bytes.TrimSpace(rest[:j])
		rest = rest[j:]
		switch field {
		case 5:
			n, err := strconv.Atoi(string(tok))
			if err != nil {
				return procStat{}, errors.New("stat: bad pgrp")
			}
			st.pgrp = n
		case 14, 15, 16, 17:
			n, err := strconv.ParseInt(string(tok), 10, 64)
			if err != nil {
				return procStat{}, errors.New("stat: bad time field")
			}
			if n > 0 {
				st.ticks += uint64(n)
			}
		}
		field++
	}
	if field <= 17 {
		return procStat{}, errors.New("stat: short line")
	}
	return st, nil
}

// groupTicks scans procDir (normally /proc) once and returns, for each
// process group in want, the CPU ticks of its live members. Processes that
// vanish during the scan are skipped.
func groupTicks(procDir string, want map[int]bool) map[int]uint64 {
	out := make(map[int]uint64, len(want))
	f, err := os.Open(procDir)
	if err != nil {
		return out
	}
	defer f.Close()
	buf := make([]byte, 1024)
	for {
		names, err := f.Readdirnames(512)
		for _, name := range names {
			if name == "" || name[0] < '0' || name[0] > '9' {
				continue
			}
			n, rerr := readInto(filepath.Join(procDir, name, "stat"), buf)
			if rerr != nil {
				continue
			}
			st, perr := parseStat(buf[:n])
			if perr != nil || !want[st.pgrp] {
				continue
			}
			out[st.pgrp] += st.ticks
		}
		if err != nil {
			break
		}
	}
	return out
}

// readInto reads a small file into buf with one open and one read (a stat
// line is well under 1 KiB).
func readInto(path string, buf []byte) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.Read(buf)
	if n == 0 && err != nil {
		return 0, err
	}
	return n, nil
}

// netDev returns the received and sent bytes of interface dev in a
// /proc/<pid>/net/dev file (the network namespace of pid).
func netDev(b []byte, dev string) (rx, tx uint64, ok bool) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		name, rest, found := bytes.Cut(line, []byte{':'})
		if !found || string(bytes.TrimSpace(name)) != dev {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 9 {
			return 0, 0, false
		}
		r, err1 := strconv.ParseUint(string(f[0]), 10, 64)
		t, err2 := strconv.ParseUint(string(f[8]), 10, 64)
		return r, t, err1 == nil && err2 == nil
	}
	return 0, 0, false
}

// memAvailable returns MemAvailable of a /proc/meminfo file, in bytes.
func memAvailable(b []byte) (uint64, bool) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		rest, found := bytes.CutPrefix(line, []byte("MemAvailable:"))
		if !found {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		return kb * 1024, err == nil
	}
	return 0, false
}
