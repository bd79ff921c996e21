//! Fuzz target: any bytes, dissected as one message in memory.
//!
//! `dissect_bytes` must never panic, loop or blow up in memory, whatever the
//! input; libFuzzer reports a panic as a crash and saves the input under
//! fuzz/artifacts/dissect/. Nothing is written to disk by the target itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbot::dissect::{Options, dissect_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = dissect_bytes(data, &Options::default());
});
