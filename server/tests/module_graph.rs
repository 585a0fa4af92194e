//! The top-level modules of the server and of the engine point one way
//! (issue 27, ARCHITECTURE.md): no module
//! imports, directly or through others, a module that imports it. Read off
//! the sources (`crate::name` paths and `use crate::name`), so a new
//! circle fails here, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its files name.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |module: &str, text: &str| {
        let deps = g.entry(module.to_string()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    };
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            for f in walk(&p) {
                add(&name, &std::fs::read_to_string(f).unwrap());
            }
        } else if name != "lib" && name != "main" {
            add(&name, &std::fs::read_to_string(&p).unwrap());
        }
    }
    g
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// A circle through `from`, if there is one (depth-first).
fn circle(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        target: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if visit(g, next, target, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    visit(g, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

/// The modules inside directory `dir` of the server (`net`, `ops`,
/// `shard`) -> the modules of the same directory their files name
/// (`crate::dir::name` or `super::name`).
fn inner_graph(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in walk(&root) {
        let module = f.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = g.entry(module.clone()).or_default();
        for prefix in [format!("crate::{dir}::"), "super::".to_string()] {
            for (i, _) in text.match_indices(&prefix) {
                let name: String =
                    text[i + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module && root.join(format!("{name}.rs")).exists() {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// Fails naming every circle among the top-level modules under `src`.
fn assert_one_way(src: &str, what: &str) {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join(src));
    assert!(g.len() >= 5, "read {} {what} modules", g.len());
    let circles: Vec<String> = g.keys().filter_map(|m| circle(&g, m)).map(|c| c.join(" -> ")).collect();
    assert!(circles.is_empty(), "import circles among {what} modules:\n{}", circles.join("\n"));
}

/// Whether `from` names `to`, directly or through other modules.
fn reaches(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let (mut todo, mut seen) = (vec![from.to_string()], BTreeSet::new());
    while let Some(m) = todo.pop() {
        for next in g.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn server_modules_point_one_way() {
    assert_one_way("src", "server");
    for dir in ["net", "ops", "shard"] {
        let g = inner_graph(dir);
        assert!(g.len() >= 5, "read {} modules in {dir}", g.len());
        let circles: Vec<String> = g.keys().filter_map(|m| circle(&g, m)).map(|c| c.join(" -> ")).collect();
        assert!(circles.is_empty(), "import circles in server/src/{dir}:\n{}", circles.join("\n"));
    }
}

/// The server's layers (ARCHITECTURE.md): ops < net < shard, router < cli.
/// The router and a shard share the front door (`net`) and never reach
/// each other.
#[test]
fn server_layers_sit_in_order() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let must_not = [
        ("ops", &["net", "shard", "router", "cli"][..]),
        ("net", &["shard", "router", "cli"][..]),
        ("shard", &["router", "cli"][..]),
        ("router", &["shard", "cli"][..]),
    ];
    let mut wrong = Vec::new();
    for (m, above) in must_not {
        assert!(g.contains_key(m), "no module {m}");
        wrong.extend(above.iter().filter(|a| reaches(&g, m, a)).map(|a| format!("{m} reaches {a}")));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn index_modules_point_one_way() {
    assert_one_way("../index/src", "index");
}

/// The engine's layers (ARCHITECTURE.md): the builder and the searcher sit
/// on the centroids, codes and format; neither reaches the other, and
/// nothing below them reaches either.
#[test]
fn the_builder_and_the_searcher_sit_on_the_lower_layers() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../index/src"));
    let lower = ["centroids", "cluster", "distance", "error", "format", "input", "io", "quant", "rng", "topk", "types"];
    let mut wrong = Vec::new();
    for m in lower.iter().chain(["build", "search"].iter()) {
        assert!(g.contains_key(*m), "no module {m}");
        for top in ["build", "search"] {
            if m != &top && reaches(&g, m, top) {
                wrong.push(format!("{m} reaches {top}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
