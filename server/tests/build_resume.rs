//! A build killed after its assign stage resumes with `--resume` (real
//! processes: the first one aborts the moment the next stage starts) and
//! produces the same bytes as an uninterrupted build; a resume with other
//! parameters is refused and loses nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fathom(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fathom"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run fathom")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fathom-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn leftovers(dir: &Path, name: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!(".{name}.building-")))
        .collect()
}

fn same_files(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a).unwrap().flatten().map(|e| e.file_name()).collect();
    names.sort();
    let mut other: Vec<_> = std::fs::read_dir(b).unwrap().flatten().map(|e| e.file_name()).collect();
    other.sort();
    assert_eq!(names, other);
    for n in names {
        assert!(std::fs::read(a.join(&n)).unwrap() == std::fs::read(b.join(&n)).unwrap(), "{n:?} differs");
    }
}

#[test]
fn a_build_killed_after_assign_resumes_to_the_same_bytes() {
    let dir = scratch("same");
    let base = dir.join("base.fbin");
    let b = base.to_str().unwrap();
    let out = fathom(&["synth", "--n", "20000", "--dim", "16", "--clusters", "40", "--queries", "5", "--out", b], &[]);
    assert!(out.status.success());
    let at = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let build = |out: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["build", "--input", b, "--metric", "l2", "--out", out];
        args.extend_from_slice(extra);
        fathom(&args, env)
    };
    assert!(build(&at("whole"), &["--quiet"], &[]).status.success());

    // Killed as the vectors stage starts: the assign checkpoint is on disk.
    let killed = build(&at("idx"), &[], &[("FATHOM_TEST_ABORT_AT_STAGE", "vectors")]);
    assert!(!killed.status.success());
    assert!(!dir.join("idx").exists());
    let left = leftovers(&dir, "idx");
    assert_eq!(left.len(), 1);
    assert!(left[0].join("assign.checkpoint.json").is_file());

    // Other parameters: refused, and the leftover is still there.
    let other = build(&at("idx"), &["--resume", "--seed", "7"], &[]);
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("other parameters") && err.contains("without --resume"), "{err}");
    assert_eq!(leftovers(&dir, "idx").len(), 1);

    // The same ones: resumed (the input is verified, assign is not run).
    let resumed = build(&at("idx"), &["--resume"], &[]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("stage=verify") && !err.contains("stage=assign"), "{err}");
    assert!(leftovers(&dir, "idx").is_empty());
    same_files(&dir.join("whole"), &dir.join("idx"));

    // Killed before the checkpoint: --resume starts over, same bytes again.
    let early = build(&at("idx2"), &[], &[("FATHOM_TEST_ABORT_AT_STAGE", "assign")]);
    assert!(!early.status.success());
    let again = build(&at("idx2"), &["--resume"], &[]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && err.contains("stage=assign"), "{err}");
    same_files(&dir.join("whole"), &dir.join("idx2"));
    let _ = std::fs::remove_dir_all(&dir);
}
