#!/usr/bin/env bash
# bench/run.sh — side-by-side load-balancer benchmark on loopback.
#
# Measures, in one run, the same workloads three ways:
#   direct   client → backend                      (127.77.0.2)
#   nimbus   client → nimbus proxy engine → backend (127.77.0.1, bench/lbproxy)
#   haproxy  client → HAProxy (mode tcp) → backend  (127.77.0.3)
# Workloads: iperf3 bulk TCP (1 and 8 streams), wrk new connection per request
# (Connection: close), wrk keep-alive, UDP datagrams/s (bench/udpload; HAProxy
# has no generic UDP). For the load balancers it reads utime+stime from
# /proc/PID/stat around each run: CPU µs per request and CPU seconds per GB.
# Targets run in a rotated order each rep; the summary gives medians over reps
# of the paired ratios to direct (same rep, same workload).
#
# Usage: bench/run.sh            (REPS=3 DUR=5 by default; both env-tunable)
# Needs: go, iperf3, wrk, haproxy, jq. Linux (127.0.0.0/8 on lo). Traffic stays
# on loopback; every run is bounded by DUR seconds and REPS repetitions; all
# processes started here are stopped on exit.
set -euo pipefail

REPS=${REPS:-3}
DUR=${DUR:-5}
(( REPS >= 1 && REPS <= 20 )) || { echo "REPS must be 1..20" >&2; exit 2; }
(( DUR >= 1 && DUR <= 60 )) || { echo "DUR must be 1..60 seconds" >&2; exit 2; }

DIRECT=127.77.0.2
NIMBUS=127.77.0.1
HAPROXY=127.77.0.3
HTTP_PORT=18080
UDP_PORT=18081
IPERF_PORT=15201
WRK_CONNS=${WRK_CONNS:-32}

for tool in go iperf3 wrk haproxy jq; do
	command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/nimbus-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/" ./bench/lbproxy ./bench/backend ./bench/udpload

"$work/backend" -http "$DIRECT:$HTTP_PORT" -udp "$DIRECT:$UDP_PORT" >"$work/backend.log" 2>&1 &
pids+=($!)
iperf3 -s -B "$DIRECT" -p "$IPERF_PORT" >"$work/iperf3.log" 2>&1 &
pids+=($!)
"$work/lbproxy" -frontend "$NIMBUS" \
	-rule "tcp:$HTTP_PORT=$DIRECT:$HTTP_PORT" \
	-rule "tcp:$IPERF_PORT=$DIRECT:$IPERF_PORT" \
	-rule "udp:$UDP_PORT=$DIRECT:$UDP_PORT" >"$work/lbproxy.log" 2>&1 &
NIMBUS_PID=$!
pids+=($NIMBUS_PID)
cat >"$work/haproxy.cfg" <<CFG
global
	maxconn 9000
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend http
	bind $HAPROXY:$HTTP_PORT
	default_backend http
backend http
	server s1 $DIRECT:$HTTP_PORT
frontend iperf
	bind $HAPROXY:$IPERF_PORT
	default_backend iperf
backend iperf
	server s1 $DIRECT:$IPERF_PORT
CFG
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
HAPROXY_PID=$!
pids+=($HAPROXY_PID)

# Wait (bounded) until every HTTP endpoint answers (iperf3 -s listens before
# the script gets here in practice; iperf3 -c retries nothing, so check it too).
for hp in "$DIRECT:$HTTP_PORT" "$NIMBUS:$HTTP_PORT" "$HAPROXY:$HTTP_PORT"; do
	ok=
	for _ in $(seq 100); do
		if curl -s -o /dev/null "http://$hp/" 2>/dev/null; then ok=1; break; fi
		sleep 0.1
	done
	[[ -n $ok ]] || { echo "endpoint $hp did not come up" >&2; cat "$work"/*.log >&2; exit 1; }
done
for _ in $(seq 100); do
	grep -q "Server listening" "$work/iperf3.log" 2>/dev/null && break
	sleep 0.1
done

ticks() { # utime+stime of a PID, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}
lbpid() {
	case $1 in nimbus) echo "$NIMBUS_PID" ;; haproxy) echo "$HAPROXY_PID" ;; *) echo "" ;; esac
}
addr() {
	case $1 in direct) echo "$DIRECT" ;; nimbus) echo "$NIMBUS" ;; haproxy) echo "$HAPROXY" ;; esac
}

# run_one TEST TARGET → prints "value work" (work: requests, bytes or datagrams)
run_one() {
	local test=$1 host; host=$(addr "$2")
	case $test in
	tcp1 | tcp8)
		local p=1; [[ $test == tcp8 ]] && p=8
		timeout $((DUR + 20)) iperf3 -c "$host" -p "$IPERF_PORT" -t "$DUR" -P "$p" -J >"$work/iperf.json"
		jq -r '"\(.end.sum_received.bits_per_second) \(.end.sum_received.bytes)"' "$work/iperf.json"
		;;
	conn | keepalive)
		local hdr=()
		[[ $test == conn ]] && hdr=(-H "Connection: close")
		timeout $((DUR + 20)) wrk -t2 -c"$WRK_CONNS" -d"${DUR}s" "${hdr[@]}" "http://$host:$HTTP_PORT/" >"$work/wrk.txt"
		awk '/requests in/ {n=$1} /Requests\/sec/ {r=$2} END {print r, n}' "$work/wrk.txt"
		;;
	udp)
		local v; v=$(timeout $((DUR + 20)) "$work/udpload" -target "$host:$UDP_PORT" -d "${DUR}s")
		echo "$v $(awk -v v="$v" -v d="$DUR" 'BEGIN {print v * d}')"
		;;
	esac
}

results="$work/results.tsv"
targets=(direct nimbus haproxy)
for rep in $(seq "$REPS"); do
	for test in tcp1 tcp8 conn keepalive udp; do
		for k in 0 1 2; do
			target=${targets[$(((k + rep) % 3))]}
			[[ $test == udp && $target == haproxy ]] && continue
			pid=$(lbpid "$target")
			before=0; [[ -n $pid ]] && before=$(ticks "$pid")
			read -r value amount < <(run_one "$test" "$target")
			after=0; [[ -n $pid ]] && after=$(ticks "$pid")
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$test" "$target" "$value" "$amount" "$((after - before))" >>"$results"
			echo "rep $rep $test $target: $value" >&2
		done
	done
done

python3 - "$results" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
hz = float(sys.argv[2])
data = {}
for rep, test, target, value, amount, ticks in rows:
    data[(rep, test, target)] = (float(value), float(amount), int(ticks) / hz)
reps = sorted({r[0] for r in rows})
tests = [("tcp1", "iperf3 1 stream (bit/s)"), ("tcp8", "iperf3 8 streams (bit/s)"),
         ("conn", "wrk new conn/request (req/s)"), ("keepalive", "wrk keep-alive (req/s)"),
         ("udp", "UDP echo (datagrams/s)")]
def med(xs):
    return statistics.median(xs) if xs else float("nan")
print(f"{'workload':32} {'direct':>12} {'nimbus/dir':>10} {'haproxy/dir':>11} {'nimbus CPU':>14} {'haproxy CPU':>14}")
for t, label in tests:
    d = med([data[(r, t, "direct")][0] for r in reps if (r, t, "direct") in data])
    cols = []
    cpu = []
    for lb in ("nimbus", "haproxy"):
        ratios = [data[(r, t, lb)][0] / data[(r, t, "direct")][0] for r in reps if (r, t, lb) in data and data[(r, t, "direct")][0] > 0]
        cols.append(f"{med(ratios):.2f}" if ratios else "n/a")
        if t in ("tcp1", "tcp8"):
            per = [data[(r, t, lb)][2] / (data[(r, t, lb)][1] / 1e9) for r in reps if (r, t, lb) in data and data[(r, t, lb)][1] > 0]
            cpu.append(f"{med(per):.2f} s/GB" if per else "n/a")
        else:
            per = [data[(r, t, lb)][2] / data[(r, t, lb)][1] * 1e6 for r in reps if (r, t, lb) in data and data[(r, t, lb)][1] > 0]
            cpu.append(f"{med(per):.1f} us/op" if per else "n/a")
    print(f"{label:32} {d:12.4g} {cols[0]:>10} {cols[1]:>11} {cpu[0]:>14} {cpu[1]:>14}")
print(f"(medians over {len(reps)} reps of paired ratios to direct; CPU = load balancer utime+stime per request/datagram or per GB)")
PY

# The kernel engine in the same run (it needs root and namespaces: its
# comparison is routed traffic between namespaces rather than loopback).
if [ "$(id -u)" = 0 ] && [ "${NIMBUS_BENCH_NFT:-1}" = 1 ]; then
	echo
	echo "== kernel engine (dataplane/nft) vs direct routed traffic between namespaces =="
	"$(dirname "$0")/run-nft.sh"
else
	echo "(kernel engine skipped: run as root for bench/run-nft.sh)"
fi
