#!/usr/bin/env bash
# bench/run-nft.sh — the kernel data plane (dataplane/nft), side by side with
# direct routed traffic between namespaces, plus its apply times.
#
#   direct  client namespace → backend, routed through nimbus's namespace with
#           the nimbus table loaded (conntrack on, no NAT)
#   nft     client → frontend → DNAT (Maglev slot map) → the same backend
#
# Workloads: iperf3 single TCP stream (DUR s), short connections (CONNS per
# run; CPU µs per connection of client + server, from getrusage). Each rep runs
# both in rotated order; the summary is the median of paired ratios. Then the
# apply-time benchmarks: health change (10 backends; 1,000 backends over 65,537
# slots), a 1,000-rule configuration (whole-table replace and element update),
# a 65,537-slot table built from scratch, with p50/p99.
#
# Usage: sudo bench/run-nft.sh   (REPS=5 DUR=3 CONNS=2000 BENCHTIME=40x)
# Needs: root, go, iperf3. All traffic stays inside namespaces the Go tests
# create (198.18.0.0/15) and every namespace is removed when they end.
set -euo pipefail

REPS=${REPS:-5}
DUR=${DUR:-3}
CONNS=${CONNS:-2000}
BENCHTIME=${BENCHTIME:-40x}
(( REPS >= 1 && REPS <= 20 )) || { echo "REPS must be 1..20" >&2; exit 2; }
(( DUR >= 1 && DUR <= 30 )) || { echo "DUR must be 1..30 seconds" >&2; exit 2; }
(( CONNS >= 100 && CONNS <= 20000 )) || { echo "CONNS must be 100..20000" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run as root (network namespaces)" >&2; exit 2; }
for tool in go iperf3; do
	command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
cd "$(dirname "$0")/.."

echo "== throughput and connection CPU (REPS=$REPS DUR=${DUR}s CONNS=$CONNS; load: $(cut -d' ' -f1-3 /proc/loadavg))"
NIMBUS_NFT_BENCH=1 REPS=$REPS DUR=$DUR CONNS=$CONNS \
	go test -count=1 -run '^TestMeasureThroughput$' -v ./internal/dataplane/nft/ | grep -E 'RESULT|rep [0-9]+:|FAIL|^ok'

echo "== apply times (benchtime $BENCHTIME)"
go test -count=1 -run '^$' -bench . -benchtime "$BENCHTIME" ./internal/dataplane/nft/ | grep -E '^Benchmark|FAIL|^ok'
