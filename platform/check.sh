#!/bin/sh
# Static checks of the service files and packaging skeletons in platform/.
# tests/platform.rs runs it under `cargo test` (so `make test` does too).
#
#  - The generated crate lists and distinfo files still match Cargo.lock
#    (platform/gen-crates.py --check).
#  - Every OS's service file, rendered by platform/install.sh exactly as
#    `make install` renders it, parses: sh -n and shellcheck for the FreeBSD
#    and NetBSD rc.d scripts, mksh -n and shellcheck -s ksh for OpenBSD's,
#    xmllint for the SMF manifest and the launchd plist, and
#    systemd-analyze verify (which must print nothing) for the unit.
#  - install.sh and this script pass shellcheck.
#  - The package directories' symlinks to those files resolve.
#
# Needs python3, shellcheck, mksh, xmllint and systemd-analyze (Debian:
# python3 shellcheck mksh libxml2-utils systemd; scripts/install-test-deps.sh
# installs them).  Exits 1 if a check fails, 77 if a tool is missing.
#
#   sh platform/check.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
for tool in python3 shellcheck mksh xmllint systemd-analyze; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "platform/check.sh: $tool is missing" >&2
		exit 77
	fi
done

fail=0
step() { printf '%s\n' "== $*"; }
bad() {
	printf '%s\n' "FAILED: $*"
	fail=1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\n' >"$tmp/weft"
chmod 0755 "$tmp/weft"

# render OS: installs into $tmp/OS as `make install` would and prints the
# service file's path.  The unit gets no DESTDIR but a prefix inside $tmp,
# so that systemd-analyze finds its ExecStart binary.
render() {
	if [ "$1" = Linux ]; then
		set -- "$1" "" "$tmp/Linux"
	else
		set -- "$1" "$tmp/$1" /usr/local
	fi
	DESTDIR=$2 PREFIX=$3 BIN=$tmp/weft SERVICE_OS=$1 \
		SYSTEMDUNITDIR=$3/lib/systemd/system \
		sh "$here/install.sh" install >"$tmp/$1.log" 2>&1 || {
		cat "$tmp/$1.log"
		return 1
	}
	sed -n 's/^install.sh: installed //p' "$tmp/$1.log"
}

step "gen-crates.py --check: crate lists and distinfo match Cargo.lock"
python3 "$here/gen-crates.py" --check || bad "crate lists are stale"

step "shellcheck: platform/install.sh, platform/check.sh"
shellcheck -s sh "$here/install.sh" "$here/check.sh" || bad "shellcheck install.sh check.sh"

for os in FreeBSD NetBSD; do
	step "sh -n, shellcheck -s sh: $os rc.d"
	if script=$(render $os); then
		sh -n "$script" || bad "sh -n $os"
		# rc.subr reads variables the scripts only set (SC2034), sets some
		# they only read (SC2154), and is not there to follow (SC1091).
		shellcheck -s sh -e SC1091,SC2034,SC2154 "$script" || bad "shellcheck $os"
	else
		bad "install.sh $os"
	fi
done

step "mksh -n, shellcheck -s ksh: OpenBSD rc.d"
if script=$(render OpenBSD); then
	mksh -n "$script" || bad "mksh -n OpenBSD"
	shellcheck -s ksh -e SC1091,SC2034,SC2154 "$script" || bad "shellcheck OpenBSD"
else
	bad "install.sh OpenBSD"
fi

for os in SunOS Darwin; do
	step "xmllint --noout: $os"
	if file=$(render $os); then
		xmllint --noout "$file" || bad "xmllint $os"
	else
		bad "install.sh $os"
	fi
done

step "systemd-analyze verify: Linux unit"
if unit=$(render Linux); then
	# It reports most problems as warnings with exit status 0: any output
	# is a failure.  --man=no: the man pages are not installed here.
	out=$(systemd-analyze verify --man=no "$unit" 2>&1) || bad "systemd-analyze verify"
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		bad "systemd-analyze verify printed warnings"
	fi
else
	bad "install.sh Linux"
fi

step "package files linked from the OS directories resolve"
for l in freebsd/port/files/weftd.in pkgsrc/files/weftd.sh \
	pkgsrc/files/smf/manifest.xml openbsd/port/pkg/weftd.rc; do
	[ -f "$here/$l" ] || bad "dangling platform/$l"
done

if [ "$fail" -eq 0 ]; then
	echo "platform checks: all passed"
fi
exit "$fail"
