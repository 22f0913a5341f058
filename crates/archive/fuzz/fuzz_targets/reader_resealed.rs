//! Like `reader`, but with every checksum recomputed first, so mutations reach
//! what lies behind them: JSON sections, zstd frames, index and statistics checks.
#![no_main]

#[path = "../src/body.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    body::reseal(&mut data);
    body::read_everything(&data);
});
