package vmss

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAssignNATPorts(t *testing.T) {
	tests := []struct {
		name       string
		start, end uint16
		current    map[string]uint16
		instances  []string
		reserved   map[uint16]bool
		want       map[string]uint16
		wantErr    bool
	}{
		{name: "fresh lowest first", start: 50000, end: 50119, instances: []string{"2", "0", "10"},
			want: map[string]uint16{"0": 50000, "2": 50001, "10": 50002}},
		{name: "survivors keep ports after scale-in", start: 50000, end: 50119,
			current:   map[string]uint16{"0": 50000, "1": 50001, "2": 50002},
			instances: []string{"0", "2"}, want: map[string]uint16{"0": 50000, "2": 50002}},
		{name: "new instance fills the hole", start: 50000, end: 50119,
			current:   map[string]uint16{"0": 50000, "2": 50002},
			instances: []string{"0", "2", "3"}, want: map[string]uint16{"0": 50000, "2": 50002, "3": 50001}},
		{name: "reserved ports skipped", start: 50000, end: 50003, reserved: map[uint16]bool{50000: true},
			instances: []string{"0", "1"}, want: map[string]uint16{"0": 50001, "1": 50002}},
		{name: "current outside range is reassigned", start: 60000, end: 60001,
			current: map[string]uint16{"0": 50000}, instances: []string{"0"}, want: map[string]uint16{"0": 60000}},
		{name: "exhausted", start: 50000, end: 50001, instances: []string{"0", "1", "2"}, wantErr: true},
		{name: "exact fit", start: 50000, end: 50001, instances: []string{"0", "1"},
			want: map[string]uint16{"0": 50000, "1": 50001}},
		{name: "empty range", start: 2, end: 1, instances: []string{"0"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AssignNATPorts(tt.start, tt.end, tt.current, tt.instances, tt.reserved)
			if tt.wantErr {
				if !errors.Is(err, ErrPortRangeExhausted) {
					t.Fatalf("err = %v, want ErrPortRangeExhausted", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSelectForScaleIn(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	five := []ScaleInCandidate{
		{InstanceID: "0", Created: t0.Add(4 * time.Minute)},
		{InstanceID: "1", Created: t0.Add(3 * time.Minute)},
		{InstanceID: "2", Created: t0.Add(2 * time.Minute), Protected: true},
		{InstanceID: "3", Created: t0.Add(1 * time.Minute)},
		{InstanceID: "4", Created: t0},
	}
	tests := []struct {
		name  string
		cands []ScaleInCandidate
		n     int
		rule  string
		want  []string
	}{
		{name: "default highest id, protected skipped", cands: five, n: 3, rule: ScaleInDefault, want: []string{"4", "3", "1"}},
		{name: "newest first", cands: five, n: 2, rule: ScaleInNewestVM, want: []string{"0", "1"}},
		{name: "oldest first", cands: five, n: 2, rule: ScaleInOldestVM, want: []string{"4", "3"}},
		{name: "case-insensitive rule", cands: five, n: 1, rule: "newestvm", want: []string{"0"}},
		{name: "more than unprotected", cands: five, n: 9, rule: ScaleInDefault, want: []string{"4", "3", "1", "0"}},
		{name: "zero", cands: five, n: 0, want: nil},
		{name: "numeric not lexical order", cands: []ScaleInCandidate{{InstanceID: "9"}, {InstanceID: "10"}}, n: 1, want: []string{"10"}},
		{name: "zones balanced first", cands: []ScaleInCandidate{
			{InstanceID: "0", Zone: "1"}, {InstanceID: "1", Zone: "2"}, {InstanceID: "2", Zone: "1"},
			{InstanceID: "3", Zone: "1"}, {InstanceID: "4", Zone: "2"}}, n: 2, want: []string{"3", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SelectForScaleIn(tt.cands, tt.n, tt.rule)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBatchSizes(t *testing.T) {
	for _, tt := range []struct{ total, pct, want int }{{10, 20, 2}, {3, 20, 1}, {100, 50, 50}, {5, 0, 1}} {
		if got := BatchSize(tt.total, tt.pct); got != tt.want {
			t.Errorf("BatchSize(%d,%d) = %d, want %d", tt.total, tt.pct, got, tt.want)
		}
	}
	for _, tt := range []struct{ total, want int }{{3, 1}, {19, 1}, {40, 2}, {100, 5}} {
		if got := RepairBatchSize(tt.total); got != tt.want {
			t.Errorf("RepairBatchSize(%d) = %d, want %d", tt.total, got, tt.want)
		}
	}
	if !UnhealthyPercentExceeded(1, 4, 20) || UnhealthyPercentExceeded(1, 5, 20) {
		t.Error("UnhealthyPercentExceeded: 1/4 > 20% and 1/5 == 20% is not exceeded")
	}
}
