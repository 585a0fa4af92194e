//! The binary codec's parameters as a client or a manifest sends them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = fathom_codec::CodecParams::from_bytes(data) {
        // What parsed must re-encode to the same bytes.
        assert_eq!(p.to_bytes(), data);
    }
});
