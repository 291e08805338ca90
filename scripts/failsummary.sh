#!/usr/bin/env bash
# failsummary.sh LOG: after a failed `go test -v` run, print each failed
# test's own messages (its t.Log/t.Error/t.Fatal lines, without the log
# dumps a failing test prints at cleanup), last 25 per test, at the end of
# the output, so that a CI excerpt showing only the last lines still names
# why a test failed.
set -euo pipefail
log=${1:?usage: failsummary.sh LOG}
[[ -r $log ]] || { echo "failsummary: cannot read $log" >&2; exit 1; }
awk '
/^=== (RUN|CONT|NAME) / { cur = $3; next }
/^ *--- FAIL: / {
	name = $3
	nfail++
	print "--- FAIL: " name " — its messages (log dumps left out; whole output in the log file):"
	n = cnt[name]; from = n > 25 ? n - 25 : 0
	for (i = from; i < n; i++) print msg[name, i]
	next
}
/^ +[^ ]+_test\.go:[0-9]+: / {
	if ($0 ~ /_test\.go:[0-9]+: ---- /) next
	msg[cur, cnt[cur]++] = substr($0, 1, 600)
}
END { if (nfail == 0) print "failsummary: no failed test in the log" }
' "$log"
