#!/bin/sh
# Prints to stdout and stderr, shows the limits it runs under, and leaves a file in the output folder.
echo "hello from ByteNite: run $BYTENITE_RUN_ID"
echo "vCPU quota: $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max) per $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cut -d' ' -f2 /sys/fs/cgroup/cpu.max) us"
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) bytes"
echo "this line goes to stderr" >&2
for i in 1 2 3; do echo "working... $i/3"; sleep 0.2; done
echo "report written at $(date -u +%FT%TZ)" > "$BYTENITE_OUTPUT_DIR/report.txt"
echo "done: wrote report.txt to $BYTENITE_OUTPUT_DIR"
