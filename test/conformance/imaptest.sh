#!/usr/bin/env bash
# Runs Dovecot's IMAP conformance tester, imaptest, against this server started as a new user starts it: a fresh
# data directory, the default configuration (worker processes and all), users made by the CLI. Each of imaptest's
# scripted files is run on its own; one line per file (ok / FAIL / SKIP = a capability it needs is not announced)
# and a summary. imaptest and its scripts are not part of this repository: build them as README.md
# ("Conformance: imaptest") says and point IMAPTEST_SRC at that checkout.
#
#   IMAPTEST_SRC=~/imaptest test/conformance/imaptest.sh             # every scripted file
#   IMAPTEST_SRC=~/imaptest test/conformance/imaptest.sh listext nil # some of them
#
# IMAPTEST_PORT (default 21000) and the five ports after it are used; outputs and the server log go to
# $IMAPTEST_OUT (default /tmp/imaptest-<port>). Any WILDDUCK_* variable set around it reaches the server.
set -u
cd "$(dirname "$0")/../.."
SRC=${IMAPTEST_SRC:?set IMAPTEST_SRC to an imaptest checkout built against dovecot-dev}
IMAPTEST=$SRC/src/imaptest
TESTS=$SRC/src/tests
BASE=${IMAPTEST_PORT:-21000}
OUT=${IMAPTEST_OUT:-/tmp/imaptest-$BASE}
[ -x "$IMAPTEST" ] || { echo "no imaptest binary at $IMAPTEST" >&2; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT/data"
export WILDDUCK_DATA_DIR=$OUT/data WILDDUCK_IMAP_PORT=$BASE WILDDUCK_IMAP_TLS_PORT=$((BASE + 1)) \
  WILDDUCK_POP3_PORT=$((BASE + 2)) WILDDUCK_POP3_TLS_PORT=$((BASE + 3)) WILDDUCK_LMTP_PORT=$((BASE + 4)) \
  WILDDUCK_API_PORT=$((BASE + 5)) WILDDUCK_IMAP_HOST=127.0.0.1 WILDDUCK_POP3_HOST=127.0.0.1
for user in testuser1 testuser2; do
  echo pass | npx tsx protocols/cli/main.ts user add "$user" --password - --address "$user@example.com" >/dev/null 2>>"$OUT/server.log" \
    || { echo "user add $user failed (see $OUT/server.log)" >&2; exit 1; }
done
# a process group of its own, so the server and its workers all stop with it
setsid npx tsx protocols/cli/main.ts start >"$OUT/server.log" 2>&1 &
server=$!
trap 'kill -- -$server 2>/dev/null; sleep 1; kill -9 -- -$server 2>/dev/null' EXIT
for _ in $(seq 1 150); do (echo >/dev/tcp/127.0.0.1/"$BASE") 2>/dev/null && break; sleep 0.2; done
[ $# -eq 0 ] && set -- $(cd "$TESTS" && ls | grep -v '\.mbox$' | grep -vx broken)
ok=0; failed=(); skipped=()
for test in "$@"; do
  mbox=$TESTS/default.mbox
  [ -f "$TESTS/$test.mbox" ] && mbox=$TESTS/$test.mbox
  timeout 120 "$IMAPTEST" host=127.0.0.1 port="$BASE" user=testuser1 user2=testuser2 pass=pass mbox="$mbox" test="$TESTS/$test" >"$OUT/$test.out" 2>&1
  counts=$(grep -E 'test groups:|base protocol:|extensions:' "$OUT/$test.out" | tr '\n' ' ')
  if grep -q 'base protocol: 0/0 ' "$OUT/$test.out" && grep -q 'extensions: 0/0 ' "$OUT/$test.out"; then
    result=SKIP; skipped+=("$test")
  elif grep -qE '^[0-9]+ test groups: 0 failed' "$OUT/$test.out" && ! grep -qE '^Error|failed:' "$OUT/$test.out"; then
    result=ok; ok=$((ok + 1))
  else
    result=FAIL; failed+=("$test")
  fi
  printf '%-32s %-4s %s\n' "$test" "$result" "$counts"
done
echo "== $ok ok, ${#failed[@]} failed, ${#skipped[@]} skipped (capability not announced)"
echo "failed: ${failed[*]:-none}"
echo "skipped: ${skipped[*]:-none}"
echo "outputs: $OUT"
[ ${#failed[@]} -eq 0 ]
