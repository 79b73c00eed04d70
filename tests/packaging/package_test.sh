#!/bin/sh
# The Debian package from this build: its contents, conffiles and lintian's findings; then,
# as root on this machine, install an earlier build, upgrade over it (the database and a
# changed conffile kept), and purge (everything gone). Exit 77 (skipped) when not root.
#   package_test.sh BUILD_DIR
set -eu
build=$1
if [ "$(id -u)" != 0 ] || ! command -v dpkg > /dev/null; then
  echo "package test: needs root and dpkg; skipped"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "package test: $*"; exit 1; }
echo "package test: building 0.1.0 and 0.2.0 with cpack"
(cd "$build" && cpack -G DEB -D CPACK_PACKAGE_VERSION=0.1.0 -B "$work/old" > "$work/cpack-old.log" 2>&1) ||
  { cat "$work/cpack-old.log"; fail "cpack failed"; }
(cd "$build" && cpack -G DEB -D CPACK_PACKAGE_VERSION=0.2.0 -B "$work/new" > "$work/cpack-new.log" 2>&1) ||
  { cat "$work/cpack-new.log"; fail "cpack failed"; }
old=$work/old/ldis_0.1.0_amd64.deb
new=$work/new/ldis_0.2.0_amd64.deb
[ -f "$old" ] && [ -f "$new" ] || fail "no package was made"

dpkg-deb -c "$new" > "$work/contents"
for f in ./usr/bin/ldisd ./usr/bin/ldisctl ./etc/ldis/ldisd.toml ./etc/ldis/rules.toml \
         ./etc/ldis/schema/report.schema.json ./lib/systemd/system/ldisd.service \
         ./lib/systemd/system/ldis-backup.timer ./usr/lib/ldis/ldis-backup \
         ./usr/share/ldis/templates/web/alert.mustache ./usr/share/ldis/assets/govuk-frontend.min.css \
         ./usr/share/ldis/assets/assets/images/govuk-crest.svg \
         ./usr/share/man/man8/ldisd.8.gz ./usr/share/man/man1/ldisctl.1.gz \
         ./usr/share/doc/ldis/copyright ./usr/share/ldis/prometheus/ldis-rules.yml; do
  grep -q " $f\$" "$work/contents" || fail "$f is not in the package"
done
grep -E "^-rwxr-xr-x .* ./usr/bin/ldisd$" "$work/contents" > /dev/null || fail "ldisd is not 0755"
dpkg-deb -I "$new" conffiles | grep -qx /etc/ldis/ldisd.toml || fail "ldisd.toml is not a conffile"
dpkg-deb -I "$new" control | grep -q "^Depends:.*libsqlite3-0" || fail "dpkg-shlibdeps did not run"
dpkg-deb -I "$new" control | grep -q "^Depends:.*adduser" || fail "adduser is not a dependency"
if command -v lintian > /dev/null; then
  lintian --tag-display-limit 0 "$new" > "$work/lintian" 2>&1 || true
  echo "package test: lintian: $(grep -c '^E:' "$work/lintian" || true) errors, $(grep -c '^W:' "$work/lintian" || true) warnings"
  sed 's/^/  /' "$work/lintian"
  if grep -q '^E:' "$work/lintian"; then fail "lintian found errors"; fi
fi

echo "package test: install 0.1.0"
dpkg --purge ldis > /dev/null 2>&1 || true
dpkg -i "$old" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
getent passwd ldis > /dev/null || fail "no user ldis"
[ "$(stat -c '%a %U' /var/lib/ldis)" = "700 ldis" ] || fail "/var/lib/ldis is not 0700 ldis"
[ "$(stat -c '%a %U %G' /etc/ldis/ldisd.toml)" = "640 root ldis" ] || fail "ldisd.toml is not 0640 root:ldis"
runuser -u ldis -- /usr/bin/ldisd --config /etc/ldis/ldisd.toml --check-config > "$work/check.log" 2>&1 ||
  { cat "$work/check.log"; fail "the installed configuration does not check"; }
runuser -u ldis -- /usr/bin/ldisctl tokens create --db /var/lib/ldis/ldis.db --role admin \
  --name "kept over the upgrade" > /dev/null 2>&1 || fail "ldisctl cannot make the database"
echo "# a local change" >> /etc/ldis/rules.toml

echo "package test: upgrade to 0.2.0"
dpkg -i --force-confold "$new" > "$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "the upgrade failed"; }
dpkg-query -W -f='${Version}' ldis | grep -qx 0.2.0 || fail "0.2.0 is not installed"
runuser -u ldis -- /usr/bin/ldisctl tokens list --db /var/lib/ldis/ldis.db | grep -q "kept over the upgrade" ||
  fail "the database was not kept"
grep -q "# a local change" /etc/ldis/rules.toml || fail "a changed conffile was overwritten"

echo "package test: purge"
dpkg --purge ldis > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge failed"; }
for p in /usr/bin/ldisd /etc/ldis /var/lib/ldis /lib/systemd/system/ldisd.service; do
  [ ! -e "$p" ] || fail "$p is still there after purge"
done
echo "package test: contents, conffiles, install, upgrade (database and local change kept), purge: ok"
