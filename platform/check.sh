#!/bin/sh
# Static checks of the man pages and service files.  Needs mandoc, shellcheck,
# mksh and xmllint (Debian: mandoc shellcheck mksh libxml2-utils).
# Run from the repository root: sh platform/check.sh
set -eu

fail=0
step() { printf '%s\n' "== $*"; }
bad() { printf '%s\n' "FAILED: $*"; fail=1; }

step "mandoc -Tlint -Wwarning man/*"
mandoc -Tlint -Wwarning man/weftd.8 man/weft.1 man/weft.conf.5 || bad mandoc

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Templates: put in what the packaging systems substitute, then check.
sed -e 's|%%PREFIX%%|/usr/local|g' platform/freebsd/rc.d/weftd >"$tmp/freebsd"
sed -e 's|@RCD_SCRIPTS_SHELL@|/bin/sh|' -e 's|@SYSCONFBASE@|/etc|g' \
    -e 's|@PREFIX@|/usr/pkg|g' -e 's|@VARBASE@|/var|g' \
    -e 's|@PKG_SYSCONFDIR@|/usr/pkg/etc/weft|g' \
    platform/netbsd/rc.d/weftd >"$tmp/netbsd"
sed -e 's|\${TRUEPREFIX}|/usr/local|g' platform/openbsd/rc.d/weftd >"$tmp/openbsd"
if grep -n '%%\|@[A-Z_]*@' "$tmp/freebsd" "$tmp/netbsd" "$tmp/openbsd"; then
	bad "placeholder left after substitution"
fi

# rc.subr reads variables the scripts only set (SC2034), sets some they only
# read (SC2154), and is not there to follow (SC1091).
for os in freebsd netbsd; do
	step "sh -n / shellcheck -s sh: $os rc.d"
	sh -n "$tmp/$os" || bad "sh -n $os"
	shellcheck -s sh -e SC1091,SC2034,SC2154 "$tmp/$os" || bad "shellcheck $os"
done
step "mksh -n / shellcheck -s ksh: openbsd rc.d"
mksh -n "$tmp/openbsd" || bad "mksh -n openbsd"
shellcheck -s ksh -e SC1091,SC2034,SC2154 "$tmp/openbsd" || bad "shellcheck openbsd"

step "xmllint --noout: SMF manifest, launchd plist"
xmllint --noout platform/illumos/weftd.xml platform/macos/com.weft.weftd.plist ||
	bad xmllint

if command -v systemd-analyze >/dev/null 2>&1; then
	step "systemd-analyze verify: weftd.service (binary and man pages may be missing here)"
	cp platform/linux/weftd.service "$tmp/weftd.service"
	systemd-analyze verify "$tmp/weftd.service" 2>&1 |
		grep -v 'is not executable\|man weft' || true
fi

step "symlinked package files resolve"
for l in platform/freebsd/port/files/weftd.in platform/pkgsrc/files/weftd.sh \
    platform/pkgsrc/files/smf/manifest.xml platform/openbsd/port/pkg/weftd.rc; do
	[ -f "$l" ] || bad "dangling $l"
done

[ "$fail" -eq 0 ] && echo "platform checks: all passed"
exit "$fail"
