#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft::fuzzing::gro_round_trip(data));
