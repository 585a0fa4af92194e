//! User ids and shard builds: ids come back from every kind of index, the
//! shards of one input split it disjointly and share a collection id, their
//! merged answers equal one index's where the search is exact, and bad id
//! files or old formats are refused before anything is written.

mod common;

use common::{mixture_files, read_f32, TempDir};
use fathom_index::build::{shard_of, NoProgress};
use fathom_index::{BuildParams, CodeKind, Index, Metric, Neighbor, OpenOptions, SearchSettings};
use std::path::{Path, PathBuf};

const DIM: usize = 16;
const N: u64 = 3_000;

/// Ids far above 2^32, not in row order.
fn user_id(row: u64) -> u64 {
    (1 << 40) + (N - row) * 7
}

fn write_ids(path: &Path, ids: &[u64]) {
    let mut b = [(ids.len() as u32).to_le_bytes(), 1u32.to_le_bytes()].concat();
    ids.iter().for_each(|i| b.extend_from_slice(&i.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// Reads every posting: exact answers where the codes are exact.
fn everything() -> SearchSettings {
    SearchSettings { max_postings: 100_000, eps2: 1e6, probe_groups: 100_000, rerank: 1000, ..Default::default() }
}

fn exact_params(ids: &Path) -> BuildParams {
    BuildParams { code: CodeKind::F32, ids_file: Some(ids.to_path_buf()), ..BuildParams::default() }
}

fn search_all(idx: &Path, queries: &[f32], k: usize) -> Vec<Vec<Neighbor>> {
    let ix = Index::open(idx, OpenOptions::default()).unwrap();
    let mut s = ix.searcher().unwrap();
    queries.chunks(DIM).map(|q| s.search(q, k, &everything()).unwrap().0).collect()
}

fn setup(name: &str) -> (TempDir, PathBuf, Vec<f32>, PathBuf) {
    let dir = TempDir::new(name);
    let (base, queries) = mixture_files(&dir, N, 20, DIM, 12);
    let ids = dir.join("ids.u64bin");
    write_ids(&ids, &(0..N).map(user_id).collect::<Vec<_>>());
    let q = read_f32(&queries);
    (dir, base, q, ids)
}

#[test]
fn three_shards_answer_like_one_index_with_the_users_ids() {
    let (dir, base, queries, ids) = setup("shards-exact");
    let whole = dir.join("whole");
    let m = fathom_index::build(&base, &whole, &exact_params(&ids), &NoProgress).unwrap().manifest;
    assert!(m.user_ids);
    let mut total = 0;
    let mut collection = None;
    let mut shards = Vec::new();
    for i in 0..3 {
        let out = dir.join(&format!("shard{i}"));
        let p = BuildParams { shard: i, shard_count: 3, ..exact_params(&ids) };
        let m = fathom_index::build(&base, &out, &p, &NoProgress).unwrap().manifest;
        total += m.vector_count;
        assert!(m.vector_count > N / 4, "balanced: shard {i} holds {}", m.vector_count);
        assert_eq!(*collection.get_or_insert(m.collection_id.clone()), m.collection_id, "one collection id");
        shards.push(out);
    }
    assert_eq!(total, N, "the shards split the input");
    let one = search_all(&whole, &queries, 10);
    let per_shard: Vec<_> = shards.iter().map(|s| search_all(s, &queries, 10)).collect();
    for (q, want) in one.iter().enumerate() {
        let mut merged: Vec<Neighbor> = per_shard.iter().flat_map(|r| r[q].clone()).collect();
        merged.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
        merged.truncate(10);
        assert_eq!(&merged, want, "query {q}");
        for n in want {
            assert!(n.id >= 1 << 40, "the user's id, not a row");
        }
    }
    for (i, s) in shards.iter().enumerate() {
        for r in per_shard[i].iter().flatten() {
            assert_eq!(shard_of(r.id, 3), i as u32, "shard {} holds {}", s.display(), r.id);
        }
    }
    // Another seed is another collection.
    let other = dir.join("other");
    let p = BuildParams { shard: 0, shard_count: 3, seed: 5, ..exact_params(&ids) };
    let m = fathom_index::build(&base, &other, &p, &NoProgress).unwrap().manifest;
    assert_ne!(Some(m.collection_id), collection);
}

#[test]
fn ids_come_back_from_pq_and_binary_collections() {
    let (dir, base, queries, ids) = setup("ids-kinds");
    let x = read_f32(&base);
    for (name, p) in [
        ("pq", BuildParams { ids_file: Some(ids.clone()), ..BuildParams::default() }),
        ("bits", BuildParams { ids_file: Some(ids.clone()), ..BuildParams::binary_collection(Metric::L2, 0, 2) }),
    ] {
        let out = dir.join(name);
        fathom_index::build(&base, &out, &p, &NoProgress).unwrap();
        let found = search_all(&out, &queries, 5);
        assert!(found.iter().flatten().all(|n| n.id >= 1 << 40), "{name}: user ids");
        // A base row finds itself at distance 0 (a binary collection's
        // codes may tie at 0 with other rows' codes).
        let row = 123u64;
        let r = search_all(&out, &x[row as usize * DIM..(row as usize + 1) * DIM], 10);
        let at_zero: Vec<u64> = r[0].iter().filter(|n| n.distance.abs() < 1e-4).map(|n| n.id).collect();
        assert!(at_zero.contains(&user_id(row)), "{name}: {:?}", r[0]);
    }
}

#[test]
fn bad_ids_are_refused_before_anything_is_written() {
    let (dir, base, _, _) = setup("ids-bad");
    let dup = dir.join("dup.u64bin");
    let mut v: Vec<u64> = (0..N).collect();
    v[2000] = 17;
    write_ids(&dup, &v);
    let out = dir.join("never");
    let e = fathom_index::build(&base, &out, &exact_params(&dup), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("row 2000: id 17 repeats row 17"), "{e}");
    let short = dir.join("short.u64bin");
    write_ids(&short, &[1, 2, 3]);
    let e = fathom_index::build(&base, &out, &exact_params(&short), &NoProgress).unwrap_err().to_string();
    assert!(e.contains("holds 3 ids but the input has 3000 rows"), "{e}");
    let p = BuildParams { shard: 3, shard_count: 3, ..BuildParams::default() };
    let e = fathom_index::build(&base, &out, &p, &NoProgress).unwrap_err().to_string();
    assert!(e.contains("shard"), "{e}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 5, "no temporary directory left behind");
}

#[test]
fn an_older_format_says_to_rebuild() {
    let (dir, base, _, _) = setup("ids-old");
    let out = dir.join("idx");
    fathom_index::build(&base, &out, &BuildParams::default(), &NoProgress).unwrap();
    let mpath = out.join("manifest.json");
    let text = std::fs::read_to_string(&mpath)
        .unwrap()
        .replace(&format!("\"format_version\": {}", fathom_index::format::FORMAT_VERSION), "\"format_version\": 1");
    std::fs::write(&mpath, text).unwrap();
    let e = Index::open(&out, OpenOptions::default()).err().unwrap().to_string();
    assert!(e.contains("format version 1") && e.contains("rebuild"), "{e}");
}

/// Progress: every stage with a known total advances by exactly that total
/// (a shard counts its own rows, not the input's), and clustering reports
/// progress instead of a frozen line (issue 13).
#[test]
fn build_progress_adds_up_per_stage() {
    use fathom_index::build::ProgressSink;
    use std::sync::Mutex;
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, u64, u64)>>);
    impl ProgressSink for Recorder {
        fn stage(&self, name: &str, total: u64) {
            self.0.lock().unwrap().push((name.to_string(), total, 0));
        }
        fn advance(&self, n: u64) {
            if let Some(last) = self.0.lock().unwrap().last_mut() {
                last.2 += n;
            }
        }
        fn finish_stage(&self) {}
    }
    let (dir, base, _, ids) = setup("progress");
    let rec = Recorder::default();
    let params = BuildParams { shard: 1, shard_count: 3, ..exact_params(&ids) };
    let m = fathom_index::build(&base, &dir.join("s1"), &params, &rec).unwrap().manifest;
    let stages = rec.0.into_inner().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert!(names.contains(&"cluster") && names.contains(&"assign"), "{names:?}");
    for (name, total, done) in &stages {
        if *total > 0 {
            assert_eq!(done, total, "stage {name}");
        }
    }
    let assign = stages.iter().find(|s| s.0 == "assign").unwrap();
    assert_eq!(assign.1, m.vector_count, "assign counts the shard's rows");
    // Provenance (issue 13): the input's name, size and row CRC, the kernels.
    let src = m.source.expect("provenance");
    assert_eq!(src.input_name, base.file_name().unwrap().to_string_lossy());
    assert_eq!(src.input_bytes, std::fs::metadata(&base).unwrap().len());
    assert_eq!(format!("{:08x}", src.input_crc32), m.collection_id[..8]);
    assert_eq!(src.kernels, fathom_index::distance::kernels().name);
}
