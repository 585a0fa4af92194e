//! Input readers: the bytes written as a file of each format (by its
//! extension), opened and read whole; ids files too. Errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 7] = ["fbin", "u8bin", "i8bin", "fvecs", "bvecs", "npy", "u64bin"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let ext = EXTENSIONS[pick as usize % EXTENSIONS.len()];
    let dir = std::env::temp_dir().join(format!("fathom-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("input.{ext}"));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    if ext == "u64bin" || (ext == "npy" && pick & 0x80 != 0) {
        if let Ok(ids) = fathom_index::input::IdFile::open(&path) {
            if ids.count <= 1 << 16 {
                let _ = ids.check();
            }
        }
        return;
    }
    if let Ok(f) = fathom_index::input::VectorFile::open(&path) {
        let rows = f.count.min(1024) as usize;
        let mut v = Vec::new();
        if f.dim <= 1 << 16 {
            let _ = f.read_f32(0, rows, &mut v);
        }
    }
});
