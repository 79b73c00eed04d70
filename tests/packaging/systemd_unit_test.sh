#!/bin/sh
# The shipped unit, with ExecStart pointed at this build's ldisd: `systemd-analyze verify`
# finds nothing to say, and `systemd-analyze security` scores its exposure at 2.0 or less.
#   systemd_unit_test.sh SOURCE_DIR LDISD_PATH
set -eu
src=$1
ldisd=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/bin/ldisd|$ldisd|g" "$src/packaging/systemd/ldisd.service" > "$dir/ldisd.service"
out=$(systemd-analyze verify --man=no "$dir/ldisd.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify: $out"; exit 1; fi
echo "systemd-analyze verify: no findings"
systemd-analyze security --offline=yes --threshold=20 "$dir/ldisd.service" | tail -1
