//! Arbitrary bytes through every reader: must return errors, never panic,
//! hang or allocate without bound.
#![no_main]

#[path = "../src/body.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::read_everything(data));
