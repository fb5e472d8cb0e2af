# $NetBSD$
#
# GENERATED - do not edit.  Regenerate from the package directory with
#	make print-cargo-depends > cargo-depends.mk && make makesum
# (lang/rust/cargo.mk reads Cargo.lock and prints CARGO_CRATE_DEPENDS+= name-version)
