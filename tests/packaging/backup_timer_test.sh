#!/bin/sh
# The nightly backup: ldis-backup makes a copy that ldisctl restore accepts, keeps the
# newest LDIS_BACKUP_KEEP, refuses a bad count; its service and timer verify.
#   backup_timer_test.sh SOURCE_DIR LDISCTL_PATH
set -eu
src=$1
ldisctl=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$ldisctl" tokens create --db "$dir/ldis.db" --role admin --name "backup test" > /dev/null
for i in 1 2 3 4; do
  LDIS_DB="$dir/ldis.db" LDIS_BACKUP_DIR="$dir/backups" LDIS_BACKUP_KEEP=2 LDISCTL="$ldisctl" \
    "$src/packaging/systemd/ldis-backup" > "$dir/run-$i.log"
  [ "$i" = 4 ] || sleep 1.1
done
n=$(ls "$dir/backups" | wc -l)
[ "$n" = 2 ] || { echo "expected the newest 2 backups, found $n:"; ls -l "$dir/backups"; exit 1; }
grep -q "removed" "$dir/run-4.log" || { echo "the 4th run removed nothing"; cat "$dir/run-4.log"; exit 1; }
newest=$(ls "$dir/backups" | sort | tail -1)
[ "$(stat -c %a "$dir/backups/$newest")" = 600 ] || { echo "a backup is not 0600"; exit 1; }
"$ldisctl" restore --from "$dir/backups/$newest" --db "$dir/restored.db" | grep -q "audit chain intact"
if LDIS_DB="$dir/ldis.db" LDIS_BACKUP_DIR="$dir/backups" LDIS_BACKUP_KEEP=none LDISCTL="$ldisctl" \
     "$src/packaging/systemd/ldis-backup" 2> "$dir/bad.log"; then
  echo "LDIS_BACKUP_KEEP=none was accepted"; exit 1
fi
grep -q "must be a whole number" "$dir/bad.log"
if command -v systemd-analyze > /dev/null; then
  sed "s|/usr/lib/ldis/ldis-backup|$src/packaging/systemd/ldis-backup|" \
    "$src/packaging/systemd/ldis-backup.service" > "$dir/ldis-backup.service"
  cp "$src/packaging/systemd/ldis-backup.timer" "$dir/"
  out=$(systemd-analyze verify --man=no "$dir/ldis-backup.service" "$dir/ldis-backup.timer" 2>&1)
  [ -z "$out" ] || { echo "systemd-analyze verify: $out"; exit 1; }
fi
echo "ldis-backup: keeps the newest 2 of 4, 0600, restorable; the unit and timer verify"
