//! Issue 26: what trying Fathom as a new user would, and attacking it on
//! loopback, found. Each test here failed before its fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fathom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fathom")).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_fbin(path: &Path, dim: usize, rows: &[f32]) {
    let n = rows.len() / dim;
    let mut b = [(n as u32).to_le_bytes(), (dim as u32).to_le_bytes()].concat();
    rows.iter().for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// (2) Vectors near 1e20 used to panic the builder (index out of bounds in
/// the assign stage). l2 and ip refuse them naming the row; cosine
/// normalises them in f64 and builds.
#[test]
fn huge_vectors_are_refused_by_row_or_normalised_never_a_panic() {
    let d = dir("huge");
    let dim = 8;
    let mut rng = fathom_index::rng::Rng::new(5);
    let mut rows: Vec<f32> = (0..3000 * dim).map(|_| rng.normal()).collect();
    rows[1234 * dim..1235 * dim].iter_mut().for_each(|v| *v *= 1e20);
    let input = d.join("huge.fbin");
    write_fbin(&input, dim, &rows);
    for metric in ["l2", "ip"] {
        let out = d.join(format!("idx-{metric}"));
        let o = fathom(&[
            "build",
            "--input",
            input.to_str().unwrap(),
            "--metric",
            metric,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let e = stderr(&o);
        assert!(!o.status.success(), "{metric}: {e}");
        assert!(!e.contains("panicked"), "{metric}: {e}");
        assert!(e.contains("input vector 1234") && e.contains("overflow"), "{metric}: {e}");
    }
    let out = d.join("idx-cos");
    let o = fathom(&[
        "build",
        "--input",
        input.to_str().unwrap(),
        "--metric",
        "cosine",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// (3) An index built with --ids answers in those ids: `fathom gt --ids`
/// writes truth in them (as .u64bin when they pass i32), and bench refuses
/// truth in row numbers instead of printing recall 0.
#[test]
fn truth_in_user_ids_and_bench_refuses_truth_of_other_ids() {
    let d = dir("ids");
    let s = |p: &str| d.join(p).to_str().unwrap().to_string();
    let o =
        fathom(&["synth", "--n", "5000", "--dim", "16", "--clusters", "20", "--queries", "50", "--out", &s("b.fbin")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Ids past i32, as user ids often are.
    let mut ids = [5000u32.to_le_bytes(), 1u32.to_le_bytes()].concat();
    (0..5000u64).for_each(|r| ids.extend_from_slice(&(10_000_000_000 + 7 * r).to_le_bytes()));
    std::fs::write(d.join("ids.u64bin"), ids).unwrap();
    let o = fathom(&[
        "build",
        "--input",
        &s("b.fbin"),
        "--metric",
        "l2",
        "--out",
        &s("idx"),
        "--ids",
        &s("ids.u64bin"),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let gt = |out: &str, ids: bool| {
        let (b, q, o, i) = (s("b.fbin"), s("b.queries.fbin"), s(out), s("ids.u64bin"));
        let mut a = vec!["gt", "--base", &b, "--queries", &q, "--k", "10", "--metric", "l2", "--quiet", "--out", &o];
        if ids {
            a.extend(["--ids", &i]);
        }
        fathom(&a)
    };
    let bench = |truth: &str| {
        fathom(&[
            "bench",
            "--index",
            &s("idx"),
            "--queries",
            &s("b.queries.fbin"),
            "--gt",
            &s(truth),
            "--k",
            "10",
            "--json",
        ])
    };
    // Row numbers: bench refuses, naming what to do.
    assert!(gt("rows.ibin", false).status.success());
    let o = bench("rows.ibin");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("fathom gt --ids"), "{}", stderr(&o));
    // Ids past i32 do not fit .ibin: refused, naming .u64bin.
    let o = gt("user.ibin", true);
    assert!(!o.status.success() && stderr(&o).contains(".u64bin"), "{}", stderr(&o));
    // .u64bin: recall as it should be.
    let o = gt("user.u64bin", true);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bench("user.u64bin");
    assert!(o.status.success(), "{}", stderr(&o));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(row["recall"].as_f64().unwrap() > 0.8, "{row}");
}
