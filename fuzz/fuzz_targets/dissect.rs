//! Fuzz target: any bytes, dissected as one message in memory, and, when
//! they start like an mbox, read as one and each message dissected.
//!
//! `dissect_bytes` and the mbox reader must never panic, loop or blow up in
//! memory, whatever the input; libFuzzer reports a panic as a crash and saves the input under
//! fuzz/artifacts/dissect/. Nothing is written to disk by the target itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbot::dissect::{Options, dissect_bytes};
use mailbot::mbox;

fuzz_target!(|data: &[u8]| {
    let _ = dissect_bytes(data, &Options::default());
    if mbox::starts_like_mbox(data) {
        for message in mbox::Reader::new(data, mbox::Format::Auto).flatten() {
            let _ = dissect_bytes(&message.bytes, &Options::default());
        }
    }
});
