//! The scale rows of `make bench` (the harness lives in `src/scale_bench.rs`, behind the
//! `bench` feature, because it drives crate-internal engine and control types).
//!
//! `cargo run --release --features bench --example scale -- 1000 10000`

fn main() {
    weft::scale_bench::main();
}
