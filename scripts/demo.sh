#!/bin/sh
# Demonstration: checkpoint a running Python 3 program and restore it, then
# restore it again from an mm-template.
#
#   sudo sh scripts/demo.sh
#
# Installs the build dependencies, builds criu/criu and the mmtemplate
# plugin, starts a small Python program that prints a running computation
# to a log file, dumps it (the dump kills it), shows it is gone, restores
# it with its original PID and shows that it continues from where it
# stopped. Then it converts the checkpoint into an mm-template (a memory
# pool on /dev/shm) and restores it three more times from the template:
# the memory comes copy-on-write from the template's holder instead of the
# page images, and each restore continues from the same checkpoint.
set -eu

SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
CRIU="$REPO/criu/criu"
PY=/usr/bin/python3

TMP=""
PID=""
POOL=""
PLUGIN="$REPO/plugins/mmtemplate"

die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# True while PID exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

stop_pid() {
	p=$1
	alive "$p" || return 0
	kill -TERM "$p" 2>/dev/null || true
	i=0
	while alive "$p" && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
	if alive "$p"; then
		kill -KILL "$p" 2>/dev/null || true
		i=0
		while alive "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	# Reap it if it is still our child (harmless otherwise).
	wait "$p" 2>/dev/null || true
	! alive "$p"
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$PID" ]; then stop_pid "$PID" || echo "demo: could not stop PID $PID" >&2; fi
	if [ -n "$POOL" ]; then
		"$CRIU" -L "$PLUGIN" mm-template delete demo > /dev/null 2>&1 || true
		rm -rf "$POOL"
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then rm -rf "$TMP"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
	echo "  criu log ($1), last lines:" >&2
	tail -n 15 "$1" 2>/dev/null | sed 's/^/    /' >&2 || true
}

last_tick() {
	tail -n 1 "$TMP/app.log" | sed -n 's/^tick \([0-9][0-9]*\) .*/\1/p'
}

[ "$(id -u)" = 0 ] || die "run me as root (criu needs it): sudo sh $0"

echo "== Preparing (dependencies and build)"
( cd "$REPO" && sh scripts/install-deps.sh ) || die "scripts/install-deps.sh failed"
( cd "$REPO" && make -s criu/criu plugins/mmtemplate/mmtemplate.so ) || die "building criu/criu failed"
[ -x "$CRIU" ] || die "$CRIU was not built"
[ -x "$PY" ] || die "$PY is missing"

TMP=$(mktemp -d /tmp/criu-demo.XXXXXX)
mkdir "$TMP/img"

cat > "$TMP/app.py" <<'EOF'
# A warm Python program: a few modules, some state, a running computation.
import collections, decimal, hashlib, json, math, time

decimal.getcontext().prec = 40
total = decimal.Decimal(0)
digest = hashlib.sha256(b"criu").hexdigest()
seen = collections.Counter()
n = 0
while True:
    n += 1
    total += decimal.Decimal(1) / decimal.Decimal(n * n)   # -> pi^2/6
    digest = hashlib.sha256(digest.encode()).hexdigest()
    seen[digest[0]] += 1
    state = {"n": n, "sum": str(total)[:14], "sha": digest[:12],
             "pi~": round(math.sqrt(6 * float(total)), 9)}
    print("tick %d %s" % (n, json.dumps(state)), flush=True)
    time.sleep(0.2)
EOF

echo "== Starting the Python program"
"$PY" "$TMP/app.py" < /dev/null > "$TMP/app.log" 2> "$TMP/app.err" &
PID=$!
echo "  PID $PID: $PY $TMP/app.py (output in $TMP/app.log)"
sleep 1.1
alive "$PID" || { cat "$TMP/app.err" >&2; die "the Python program did not start"; }
[ -n "$(last_tick)" ] || die "the Python program printed nothing"

echo "== Dumping it: criu dump -t $PID -D $TMP/img"
t0=$(now_ms)
if ! "$CRIU" dump -t "$PID" -D "$TMP/img" -o dump.log -v4; then
	show_log "$TMP/img/dump.log"
	die "criu dump failed"
fi
t1=$(now_ms)
DUMP_MS=$((t1 - t0))
# The dump killed it; reap it so that its PID is free for the restore.
wait "$PID" 2>/dev/null || true
if alive "$PID"; then die "PID $PID still runs after the dump"; fi
echo "  dump took $DUMP_MS ms; images: $(du -sh "$TMP/img" | cut -f1)"
BEFORE=$(last_tick)
echo "  last lines of its log at the dump:"
tail -n 3 "$TMP/app.log" | sed 's/^/    /'
sleep 0.6
if [ -d "/proc/$PID" ]; then die "/proc/$PID still exists"; fi
[ "$(last_tick)" = "$BEFORE" ] || die "the log grew after the dump"
echo "  PID $PID is gone (no /proc/$PID) and its log has stopped at tick $BEFORE"

echo "== Restoring it: criu restore -d -D $TMP/img"
t0=$(now_ms)
if ! "$CRIU" restore -d -D "$TMP/img" --pidfile "$TMP/restored.pid" -o restore.log -v4; then
	show_log "$TMP/img/restore.log"
	PID=""
	die "criu restore failed"
fi
t1=$(now_ms)
RESTORE_MS=$((t1 - t0))
NEWPID=$(cat "$TMP/restored.pid" 2>/dev/null || true)
[ "$NEWPID" = "$PID" ] || die "restored PID is '$NEWPID', expected $PID"
echo "  restore took $RESTORE_MS ms; PID $PID runs again (parent now PID $(awk '{print $4}' "/proc/$PID/stat"))"
sleep 1.1
alive "$PID" || { show_log "$TMP/img/restore.log"; die "the restored process died"; }
AFTER=$(last_tick)
echo "  last lines of its log after the restore:"
tail -n 3 "$TMP/app.log" | sed 's/^/    /'
[ -n "$AFTER" ] && [ "$AFTER" -gt "$BEFORE" ] || die "the counter did not advance after the restore (tick $BEFORE -> ${AFTER:-none})"
grep -q "^tick $((BEFORE + 1)) " "$TMP/app.log" || die "tick $((BEFORE + 1)) is missing: it did not continue where it stopped"
[ "$(grep -c '^tick 1 ' "$TMP/app.log")" = 1 ] || die "the program restarted from the beginning"
[ -s "$TMP/app.err" ] && { cat "$TMP/app.err" >&2; die "the program wrote errors"; }

echo "== Stopping the restored process (PID $PID)"
stop_pid "$PID" || die "could not stop PID $PID"
while [ -d "/proc/$PID" ]; do sleep 0.01; done  # reaped by init: the PID is free
PID=""

# mm-templates: a private pool and holder socket directory for the demo
POOL=$(mktemp -d /dev/shm/criu-demo-pool.XXXXXX)
export CRIU_MM_POOL="$POOL" CRIU_MM_RUN="$TMP/run"
echo "== Converting the checkpoint into the mm-template 'demo' (pool $POOL)"
"$CRIU" -L "$PLUGIN" convert -D "$TMP/img" --mm-template demo -o convert.log -v4 ||
	{ show_log "$TMP/img/convert.log"; die "criu convert failed"; }
"$CRIU" -L "$PLUGIN" mm-template list | sed 's/^/  /'
TMPL_MS=""
for i in 1 2 3; do
	t0=$(now_ms)
	if ! "$CRIU" -L "$PLUGIN" restore -d -D "$TMP/img" --mm-template demo --pidfile "$TMP/restored.pid" \
		-o tmpl-restore.log -v4; then
		show_log "$TMP/img/tmpl-restore.log"
		die "criu restore --mm-template failed"
	fi
	t1=$(now_ms)
	PID=$(cat "$TMP/restored.pid")
	sleep 0.5
	alive "$PID" || die "the process restored from the template died"
	# it writes at the file offset of the checkpoint: over the previous run
	[ "$(last_tick)" -gt "$BEFORE" ] && grep -q "^tick $((BEFORE + 1)) " "$TMP/app.log" &&
		[ "$(grep -c '^tick 1 ' "$TMP/app.log")" = 1 ] ||
		die "restore $i from the template did not continue from tick $BEFORE"
	note=""
	[ $i = 1 ] && note=" (this first one also starts the template's holder)"
	echo "  restore $i from the template: $((t1 - t0)) ms$note; PID $PID continued from tick $BEFORE;" \
		"$(grep -E '^(Rss|Pss):' /proc/$PID/smaps_rollup | tr -s ' ' | tr '\n' ' ')"
	[ $i -gt 1 ] && TMPL_MS="$TMPL_MS $((t1 - t0))"
	stop_pid "$PID" || die "could not stop PID $PID"
	while [ -d "/proc/$PID" ]; do sleep 0.01; done  # reaped by the holder
	PID=""
done
"$CRIU" -L "$PLUGIN" mm-template delete demo || die "mm-template delete failed"

echo
echo "Result: the counter went on from tick $BEFORE to tick $AFTER without restarting,"
echo "and three more times from the mm-template."
echo "  dump:                    $DUMP_MS ms"
echo "  restore from images:     $RESTORE_MS ms"
echo "  restore from a template:$TMPL_MS ms (Pss < Rss: the memory is shared with the template)"
echo "demo: OK"
