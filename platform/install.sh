#!/bin/sh
# Installs weft -- the binary, its man pages and the service file of the OS
# it runs on -- or removes exactly those files.  The Makefile's install,
# install-files and uninstall targets call it; plain POSIX sh, mkdir, cp, sed
# and chmod, so it behaves the same under GNU make and BSD make and does not
# depend on install(1), whose options differ on illumos.
#
#   sh platform/install.sh install|uninstall
#
# Environment (the Makefile passes its variables of the same names):
#   PREFIX          installation prefix (default /usr/local)
#   DESTDIR         staging root prepended to every path (default empty)
#   BIN             the built binary (default target/release/weft)
#   SERVICE_OS      whose service file to install: Linux, FreeBSD, NetBSD,
#                   OpenBSD, Darwin, SunOS, or "none" (default: uname -s)
#   SYSTEMDUNITDIR  Linux only (default $PREFIX/lib/systemd/system)
#
# Where the service file goes, with the placeholders of its template filled
# in (the same placeholders the ports and pkgsrc fill in):
#   Linux    $SYSTEMDUNITDIR/weftd.service                   0644
#   FreeBSD  $PREFIX/etc/rc.d/weftd                          0555
#   NetBSD   /etc/rc.d/weftd                                 0555
#   OpenBSD  /etc/rc.d/weftd                                 0555
#   Darwin   /Library/LaunchDaemons/com.weft.weftd.plist     0644
#   SunOS    /var/svc/manifest/site/weftd.xml                0444
set -eu

umask 022
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=${BIN:-target/release/weft}
SERVICE_OS=${SERVICE_OS:-$(uname -s)}
SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-$PREFIX/lib/systemd/system}
here=$(dirname "$0")
man=$here/../man

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# PREFIX goes into sed replacements and service files: keep it plain.
case $PREFIX in
*[!A-Za-z0-9._/+-]*) die "PREFIX may only hold letters, digits and ._/+- (got '$PREFIX')" ;;
/*) ;;
*) die "PREFIX must be an absolute path, not '$PREFIX'" ;;
esac

# Sets service_src, service_dst, service_mode and service_sed (the sed
# program that fills in the template) for $SERVICE_OS; service_dst is empty
# when there is nothing to install.
select_service() {
	service_dst=
	case $SERVICE_OS in
	Linux)
		service_src=$here/linux/weftd.service
		service_dst=$SYSTEMDUNITDIR/weftd.service
		service_mode=0644
		service_sed="s|@PREFIX@|$PREFIX|g"
		;;
	FreeBSD)
		service_src=$here/freebsd/rc.d/weftd
		service_dst=$PREFIX/etc/rc.d/weftd
		service_mode=0555
		service_sed="s|%%PREFIX%%|$PREFIX|g"
		;;
	NetBSD)
		service_src=$here/netbsd/rc.d/weftd
		service_dst=/etc/rc.d/weftd
		service_mode=0555
		service_sed="s|@RCD_SCRIPTS_SHELL@|/bin/sh|g;s|@SYSCONFBASE@|/etc|g;\
s|@PKG_SYSCONFDIR@|$PREFIX/etc/weft|g;s|@VARBASE@|/var|g;s|@PREFIX@|$PREFIX|g"
		;;
	OpenBSD)
		service_src=$here/openbsd/rc.d/weftd
		service_dst=/etc/rc.d/weftd
		service_mode=0555
		service_sed="s|\${TRUEPREFIX}|$PREFIX|g"
		;;
	Darwin)
		service_src=$here/macos/com.weft.weftd.plist
		service_dst=/Library/LaunchDaemons/com.weft.weftd.plist
		service_mode=0644
		service_sed="s|@PREFIX@|$PREFIX|g"
		;;
	SunOS)
		service_src=$here/illumos/weftd.xml
		service_dst=/var/svc/manifest/site/weftd.xml
		service_mode=0444
		service_sed="s|@SMF_PREFIX@|site|g;s|@SMF_NAME@|weftd|g;\
s|@PKG_SYSCONFDIR@|$PREFIX/etc/weft|g;s|@VARBASE@|/var|g;\
s|@PKGMANDIR@|share/man|g;s|@PREFIX@|$PREFIX|g"
		;;
	none) ;;
	*) printf 'install.sh: no service file for %s; weftd is installed without one\n' \
		"$SERVICE_OS" >&2 ;;
	esac
}

# put SRC DST MODE [SED]: writes DST (under DESTDIR) beside itself and
# renames it into place, so a failed install never leaves half a file.
put() {
	dst=$DESTDIR$2
	mkdir -p "$(dirname "$dst")"
	rm -f "$dst.new"
	if [ $# -ge 4 ]; then
		sed "$4" "$1" >"$dst.new"
	else
		cp "$1" "$dst.new"
	fi
	chmod "$3" "$dst.new"
	mv -f "$dst.new" "$dst"
}

install_all() {
	[ -f "$BIN" ] || die "$BIN does not exist: build it first (make), or set BIN"
	put "$BIN" "$PREFIX/sbin/weftd" 0755
	mkdir -p "$DESTDIR$PREFIX/bin"
	# One binary: it is the daemon or the CLI by the name it is run as.
	ln -sf ../sbin/weftd "$DESTDIR$PREFIX/bin/weft"
	put "$man"/weft.1 "$PREFIX/share/man/man1/weft.1" 0644
	put "$man"/weft.conf.5 "$PREFIX/share/man/man5/weft.conf.5" 0644
	put "$man"/weftd.8 "$PREFIX/share/man/man8/weftd.8" 0644
	select_service
	if [ -n "$service_dst" ]; then
		put "$service_src" "$service_dst" "$service_mode" "$service_sed"
		# shellcheck disable=SC2016 # a literal ${TRUEPREFIX}
		if grep -n '%%[A-Z_]*%%\|@[A-Z_]*@\|\${TRUEPREFIX}' "$DESTDIR$service_dst" >&2; then
			die "placeholder left in $DESTDIR$service_dst"
		fi
		echo "install.sh: installed $DESTDIR$service_dst"
	fi
}

uninstall_all() {
	select_service
	rm -f "$DESTDIR$PREFIX/sbin/weftd" "$DESTDIR$PREFIX/bin/weft" \
		"$DESTDIR$PREFIX/share/man/man1/weft.1" \
		"$DESTDIR$PREFIX/share/man/man5/weft.conf.5" \
		"$DESTDIR$PREFIX/share/man/man8/weftd.8"
	if [ -n "$service_dst" ]; then
		rm -f "$DESTDIR$service_dst"
	fi
}

case ${1-} in
install) install_all ;;
uninstall) uninstall_all ;;
*) die "usage: install.sh install|uninstall" ;;
esac
