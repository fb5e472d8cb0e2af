#!/usr/bin/env python3
"""Writes the vendored-crate lists of the FreeBSD port, the pkgsrc package and
the OpenBSD port from Cargo.lock, so that they cannot drift from it.

    python3 platform/gen-crates.py           # rewrite the generated files
    python3 platform/gen-crates.py --check   # exit 1 if any of them is stale

Generated (do not edit them by hand):
  freebsd/port/Makefile.crates  CARGO_CRATES=, what `make cargo-crates` prints
  freebsd/port/distinfo         SHA256/SIZE of rust/crates/*.crate
  pkgsrc/cargo-depends.mk       CARGO_CRATE_DEPENDS+=, as `make print-cargo-depends`
  pkgsrc/distinfo               BLAKE2s/SHA512/Size of *.crate
  openbsd/port/crates.inc       MODCARGO_CRATES +=, as `make modcargo-gen-crates`

The distinfo files hold the crates only: weft's own source tarball is not
published yet, so `make makesum` in the ports tree adds it (and rewrites the
file) once it is.  The checksums come from the .crate files in cargo's
download cache (~/.cargo/registry/cache); each file is first checked against
the sha256 Cargo.lock records for it, and `cargo fetch --locked` is run if any
is missing.  Only crates.io dependencies are supported: a git or path
dependency is refused, because none of the three frameworks vendors it the
same way.  Needs Python 3.11 or later (tomllib).
"""

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
PLATFORM = Path(__file__).resolve().parent
REPO = PLATFORM.parent


class Crate:
    """One crates.io package pinned by Cargo.lock."""

    def __init__(self, name, version, sha256):
        self.name = name
        self.version = version
        self.sha256 = sha256

    @property
    def stem(self):
        return f"{self.name}-{self.version}"

    @property
    def file_name(self):
        return f"{self.stem}.crate"


def locked_crates(lock_path):
    """The crates.io packages of Cargo.lock, in its (name, version) order."""
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    crates = []
    for package in lock.get("package", []):
        source = package.get("source")
        if source is None:
            continue  # weft itself
        if source != CRATES_IO or "checksum" not in package:
            sys.exit(
                f"gen-crates: {package['name']} {package['version']} comes from "
                f"{source}, not crates.io; the port and package cannot vendor it"
            )
        crates.append(Crate(package["name"], package["version"], package["checksum"]))
    return crates


def cargo_cache_dirs():
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    return sorted((cargo_home / "registry" / "cache").glob("*"))


def find_crate_file(crate):
    for directory in cargo_cache_dirs():
        path = directory / crate.file_name
        if path.is_file():
            return path
    return None


def crate_files(crates):
    """Maps each crate to its downloaded .crate file, fetching missing ones once."""
    if any(find_crate_file(c) is None for c in crates):
        subprocess.run(
            ["cargo", "fetch", "--locked", "--quiet", "--manifest-path", str(REPO / "Cargo.toml")],
            check=True,
        )
    files = {}
    for crate in crates:
        path = find_crate_file(crate)
        if path is None:
            sys.exit(f"gen-crates: {crate.file_name} is not in cargo's cache after cargo fetch")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != crate.sha256:
            sys.exit(f"gen-crates: {path} does not match the sha256 in Cargo.lock")
        files[crate.stem] = data
    return files


GENERATED = "GENERATED from Cargo.lock by platform/gen-crates.py - do not edit."


def freebsd_crates(crates):
    lines = [f"# {GENERATED}"]
    items = [c.stem for c in crates]
    for i, stem in enumerate(items):
        lead = "CARGO_CRATES=\t" if i == 0 else "\t\t"
        tail = " \\" if i < len(items) - 1 else ""
        lines.append(f"{lead}{stem}{tail}")
    return "\n".join(lines) + "\n"


def freebsd_distinfo(crates, files):
    lines = []
    for crate in crates:
        path = f"rust/crates/{crate.file_name}"
        lines.append(f"SHA256 ({path}) = {crate.sha256}")
        lines.append(f"SIZE ({path}) = {len(files[crate.stem])}")
    return "\n".join(lines) + "\n"


def pkgsrc_depends(crates):
    lines = ["# $NetBSD$", f"# {GENERATED}", ""]
    lines += [f"CARGO_CRATE_DEPENDS+=\t{c.stem}" for c in crates]
    return "\n".join(lines) + "\n"


def pkgsrc_distinfo(crates, files):
    lines = ["$NetBSD$", ""]
    # pkgsrc lists distfiles sorted by file name, bytewise.
    for crate in sorted(crates, key=lambda c: c.file_name.encode()):
        data = files[crate.stem]
        name = crate.file_name
        lines.append(f"BLAKE2s ({name}) = {hashlib.blake2s(data).hexdigest()}")
        lines.append(f"SHA512 ({name}) = {hashlib.sha512(data).hexdigest()}")
        lines.append(f"Size ({name}) = {len(data)} bytes")
    return "\n".join(lines) + "\n"


def openbsd_crates(crates):
    lines = [f"# {GENERATED}", ""]
    lines += [f"MODCARGO_CRATES +=\t{c.name}\t{c.version}" for c in crates]
    return "\n".join(lines) + "\n"


def generated_files():
    crates = locked_crates(REPO / "Cargo.lock")
    files = crate_files(crates)
    return {
        "freebsd/port/Makefile.crates": freebsd_crates(crates),
        "freebsd/port/distinfo": freebsd_distinfo(crates, files),
        "pkgsrc/cargo-depends.mk": pkgsrc_depends(crates),
        "pkgsrc/distinfo": pkgsrc_distinfo(crates, files),
        "openbsd/port/crates.inc": openbsd_crates(crates),
    }


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        sys.exit("usage: gen-crates.py [--check]")
    stale = []
    for relative, text in generated_files().items():
        path = PLATFORM / relative
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(f"platform/{relative}")
        else:
            path.write_text(text)
            print(f"gen-crates: wrote platform/{relative}")
    if stale:
        print(
            "gen-crates: out of date with Cargo.lock: "
            + ", ".join(stale)
            + "; run python3 platform/gen-crates.py and commit the result",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
