//! manifest.json: any text is an error or a manifest that passed its
//! checks, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fathom_index::Manifest::parse(text, "manifest.json".into());
    }
});
