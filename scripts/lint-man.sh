#!/usr/bin/env bash
# Lints every man page with mandoc (warnings and errors fail; STYLE notes such as "referenced
# manual not found" depend on the machine's installed pages and are not checked), and, given
# the built binary as WEFT_BIN, checks that every long flag `weftd --help` lists is documented
# in man/weftd.8.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mandoc >/dev/null 2>&1; then
    echo "lint-man: mandoc is missing (apt-get install mandoc, or scripts/install-test-deps.sh)" >&2
    exit 1
fi

status=0
for page in man/*.[1-9]; do
    if ! mandoc -Tlint -W warning "$page"; then
        echo "lint-man: $page has mandoc warnings" >&2
        status=1
    fi
done

if [ -n "${WEFT_BIN:-}" ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    ln -s "$(realpath "$WEFT_BIN")" "$dir/weftd"
    flags=$("$dir/weftd" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
    for flag in $flags; do
        # mdoc spells --ca-file as `Fl \-ca\-file`.
        name=${flag#--}
        if ! grep -qFw "Fl \\-${name//-/\\-}" man/weftd.8; then
            echo "lint-man: weftd $flag is not documented in man/weftd.8" >&2
            status=1
        fi
    done
fi
[ "$status" -eq 0 ] && echo "lint-man: man pages clean"
exit "$status"
