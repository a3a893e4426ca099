#!/bin/sh
# Periodic ops commands without Celery or cron: the compose `scheduler` service runs this loop.
# Each command is safe to overlap with itself (SKIP LOCKED / idempotent), so a slow run never
# corrupts anything; a failure is logged and the loop goes on. drain_recalc waits by itself
# while exam mode is on. SCHEDULER_ONCE=1 runs one round and exits with its status (tests, cron).
set -u
interval="${SCHEDULER_INTERVAL_SECONDS:-60}"
purge_every="${SCHEDULER_PURGE_EVERY_ROUNDS:-60}"
round=0
trap 'exit 0' TERM INT

run() {
    echo "scheduler: manage.py $*"
    python manage.py "$@" || { echo "scheduler: manage.py $1 failed" >&2; status=1; }
}

while :; do
    status=0
    run expire_sessions
    run drain_recalc
    if [ $((round % purge_every)) -eq 0 ]; then
        run purge_idempotency_keys
    fi
    [ "${SCHEDULER_ONCE:-0}" = 1 ] && exit "$status"
    round=$((round + 1))
    sleep "$interval" &
    wait $!
done
