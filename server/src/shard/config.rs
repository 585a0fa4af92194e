//! Server configuration: built-in defaults < TOML file < `FATHOM_*`
//! environment variables (`FATHOM_SEARCH__RERANK` for `[search] rerank`) <
//! command-line flags, merged by [`Layers`]. [`Config`] is the one list of
//! keys: what each layer may set (unknown keys are refused), what the
//! server runs with after [`Config::check`], and what it logs at start,
//! with the same names as the file.

use crate::net::front_door::FrontDoor;
use crate::ops::layers::Layers;
use anyhow::{bail, Context};
use fathom_index::io::BackendChoice;
use fathom_index::{SearchOverrides, SearchSettings};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every key of the server's configuration, with its default
/// (`deploy/fathom.example.toml` shows each one).
#[derive(Debug, Clone, Deserialize, Serialize)]
// Unknown keys are refused by `Layers::read` (serde cannot beside a flatten).
#[serde(default)]
pub struct Config {
    /// Index directory to serve.
    pub index: Option<PathBuf>,
    /// Or: a directory of index versions and a `CURRENT` file naming one
    /// (swapped on SIGHUP).
    pub index_root: Option<PathBuf>,
    /// With `index_root`: also check `CURRENT` this often (0 = only on SIGHUP).
    pub index_watch_ms: u64,
    /// What a swap checks before it serves a new version: `open` (headers,
    /// sizes, the small files' checksums: what opening checks) or `full`
    /// (also every page of the large files; reads the whole version).
    pub swap_verify: SwapVerify,
    /// gRPC listen address.
    pub listen: String,
    /// HTTP address for /metrics, /livez, /readyz ("" = off).
    pub metrics_listen: String,
    /// Request limits, cost caps, connections, API keys, TLS, the drain:
    /// the keys `fathom route` shares.
    #[serde(flatten)]
    pub front: FrontDoor,
    /// Search worker threads, each with its own searcher and I/O ring.
    /// Default: two per core, at most 64. A worker waits on its reads for
    /// much of a query, so more workers than cores keep the disk busier: on
    /// 2 cores (benches/RESULTS.md, session 12) 4 workers served 29% more
    /// queries than 2 and 8 workers 57% more, at lower mean latency under
    /// load. The cap bounds the per-worker memory on large nodes (a ring,
    /// buffers and, with resident codes, a bit per vector).
    pub workers: usize,
    /// Requests queued for the workers before new ones get RESOURCE_EXHAUSTED.
    pub queue_depth: usize,
    /// I/O backend: auto, uring or pread.
    pub backend: BackendChoice,
    /// Read index data with O_DIRECT.
    pub direct_io: bool,
    /// Keep the index's resident row codes (`codes.bin`) in memory.
    pub resident_codes: bool,
    /// Memory for the posting codes of an index scored from disk (one
    /// without resident row codes): all are held, and queries read only
    /// rerank rows, when they fit. `auto` = a tenth of the raw vector bytes
    /// less what the index holds anyway; a size such as `64MiB`; `0` = none.
    pub memory_budget: String,
    /// Search settings for the keys a request leaves unset; a key not set
    /// here takes the served index's own default
    /// (`Index::default_settings`: `SearchSettings::default`, or more
    /// postings for an index holding one copy of each vector).
    pub search: SearchOverrides,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            index: None,
            index_root: None,
            index_watch_ms: 0,
            swap_verify: SwapVerify::Open,
            listen: "127.0.0.1:7700".into(),
            metrics_listen: String::new(),
            front: FrontDoor::default(),
            workers: (2 * std::thread::available_parallelism().map_or(2, |n| n.get())).min(64),
            queue_depth: 256,
            backend: BackendChoice::Auto,
            direct_io: true,
            resident_codes: true,
            memory_budget: "auto".into(),
            search: SearchOverrides::default(),
        }
    }
}

impl Config {
    /// Defaults < `file` < `FATHOM_*` variables < `flags`, checked.
    pub fn load(file: Option<&Path>, flags: impl FnOnce(Layers) -> Layers) -> anyhow::Result<Config> {
        let mut layers = Layers::default();
        if let Some(f) = file {
            layers = layers.file(f)?;
        }
        flags(layers.env::<Config>("FATHOM_")).read::<Config>().context("server configuration")?.check()
    }

    /// Checks every key and the keys together.
    /// The parsed `memory_budget`.
    pub fn memory_budget(&self) -> anyhow::Result<fathom_index::MemoryBudget> {
        crate::ops::sysinfo::parse_memory_budget(&self.memory_budget).map_err(|e| anyhow::anyhow!("memory_budget: {e}"))
    }

    pub fn check(self) -> anyhow::Result<Config> {
        match (&self.index, &self.index_root) {
            (Some(_), Some(_)) => {
                bail!("give either an index directory (index) or an index root (index_root), not both")
            }
            (None, None) => bail!(
                "no index: pass --index DIR (or --index-root DIR), set FATHOM_INDEX (FATHOM_INDEX_ROOT) or `index` \
                 (`index_root`) in the config"
            ),
            _ => {}
        }
        self.listen_addr()?;
        self.metrics_addr()?;
        self.memory_budget()?;
        if self.workers == 0 || self.workers > 1024 {
            bail!("workers must be in 1..=1024, got {}", self.workers);
        }
        if self.queue_depth == 0 {
            bail!("queue_depth must be at least 1");
        }
        let front = self.front.clone().check()?;
        let this = Config { front, ..self };
        this.search.apply(SearchSettings::default()).validate().context("search defaults")?;
        Ok(this)
    }

    /// The index directory, or the root of versions, to serve.
    pub fn index_source(&self) -> crate::shard::config::IndexSource {
        match (&self.index, &self.index_root) {
            (Some(d), _) => crate::shard::config::IndexSource::Dir(d.clone()),
            (None, Some(r)) => crate::shard::config::IndexSource::Root(r.clone()),
            // Refused by `check`.
            (None, None) => crate::shard::config::IndexSource::Dir(PathBuf::new()),
        }
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        crate::net::listener::resolve_listen(&self.listen).with_context(|| {
            format!("listen must be an address like 0.0.0.0:7700 or localhost:7700, not {:?}", self.listen)
        })
    }

    /// The metrics address; `None` when `metrics_listen` is "".
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        match self.metrics_listen.as_str() {
            "" => Ok(None),
            a => Ok(Some(crate::net::listener::resolve_listen(a).with_context(|| {
                format!("metrics_listen must be an address like 0.0.0.0:9100 or \"\" (off), not {a:?}")
            })?)),
        }
    }

    pub fn index_watch(&self) -> Option<Duration> {
        Some(self.index_watch_ms).filter(|&ms| ms > 0).map(Duration::from_millis)
    }
}

/// See [`Config::swap_verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwapVerify {
    Open,
    Full,
}

/// The file in an index root that names the version to serve.
pub const CURRENT_FILE: &str = "CURRENT";

/// Where the index to serve is.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexSource {
    /// One directory, for the life of the process.
    Dir(PathBuf),
    /// Versions under a root, the current one named by `CURRENT`.
    Root(PathBuf),
}

impl IndexSource {
    /// The directory to serve now.
    pub fn current(&self) -> anyhow::Result<PathBuf> {
        match self {
            IndexSource::Dir(d) => Ok(d.clone()),
            IndexSource::Root(root) => current_version(root),
        }
    }
}

/// `root/<name in CURRENT>`, the name checked to be a plain directory name
/// that stays inside the root (a symlink out of it is refused). `CURRENT`
/// is read only as a small regular file: a FIFO or a device is refused, not
/// waited on.
pub fn current_version(root: &Path) -> anyhow::Result<PathBuf> {
    let path = root.join(CURRENT_FILE);
    let text = fathom_index::format::files::read_regular_text(&path, 4096)
        .with_context(|| format!("reading {} (it names the index version to serve)", path.display()))?;
    let name = text.trim();
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("{}: {name:?} is not the name of a version directory in {}", path.display(), root.display());
    }
    let dir = root.join(name);
    let (real_root, real_dir) = (root.canonicalize(), dir.canonicalize());
    if let (Ok(r), Ok(d)) = (&real_root, &real_dir) {
        if d.parent() != Some(r.as_path()) {
            bail!("{}: {name:?} leads out of {} (to {}): refused", path.display(), root.display(), d.display());
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, flags: impl FnOnce(Layers) -> Layers) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!("fathom-cfg-{}-{}", std::process::id(), toml.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, toml).unwrap();
        Config::load(Some(&f), flags)
    }

    #[test]
    fn later_layers_win_and_unknown_keys_are_rejected() {
        let c = load("index = \"a\"\nworkers = 3\n[search]\nrerank = 50\n", |l| l.set("workers", Some(5))).unwrap();
        assert!(matches!(c.index_source(), crate::shard::config::IndexSource::Dir(d) if d == Path::new("a")));
        assert_eq!(
            (c.workers, c.search.rerank, c.search.max_postings),
            (5, Some(50), None),
            "a key the layers leave unset stays the index's"
        );
        let c = load("index = \"a\"\n[search]\nrerank = 50\n", |l| l.set("search.eps2", Some(0.25))).unwrap();
        assert_eq!((c.search.rerank, c.search.eps2), (Some(50), Some(0.25)), "a nested key merges into its table");
        let e = |toml: &str| format!("{:#}", load(toml, |l| l).unwrap_err());
        assert!(e("index = \"a\"\nindex_root = \"r\"\n").contains("not both"));
        assert!(e("index = \"a\"\nwrokers = 3\n").contains("wrokers"));
        assert!(e("index = \"a\"\nmemory_budget = \"lots\"\n").contains("memory_budget"));
        let c = load("index = \"a\"\nmemory_budget = \"64MiB\"\n", |l| l).unwrap();
        assert_eq!(c.memory_budget().unwrap(), fathom_index::MemoryBudget::Bytes(64 << 20));
        assert!(e("index = \"a\"\n[search]\nmax_postngs = 3\n").contains("max_postngs"));
        assert!(e("index = \"a\"\nlisten = \"nope\"\n").contains("listen"));
        assert!(e("index = \"a\"\nbackend = \"fast\"\n").contains("fast"));
        assert!(e("index = \"a\"\n[search]\nblock_pages = 0\n").contains("block_pages"));
        assert!(e("").contains("no index"));
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fathom.example.toml");
        // It names no index (issue 26: with `index` set, `--index-root`
        // failed); either flag completes it.
        Config::load(Some(&example), |l| l.set("index", Some("a".to_string()))).expect("valid with --index");
        Config::load(Some(&example), |l| l.set("index_root", Some("r".to_string()))).expect("valid with --index-root");
    }

    /// The effective configuration, as logged, reads back as the same
    /// configuration: the log names keys as the file does.
    #[test]
    fn the_logged_configuration_is_a_valid_file() {
        let c = load("index = \"a\"\nmetrics_listen = \"127.0.0.1:9\"\n", |l| l).unwrap();
        let logged = toml::to_string(&c).unwrap();
        let again: Config = toml::from_str(&logged).unwrap();
        assert_eq!(format!("{again:?}"), format!("{c:?}"));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["drain_timeout_ms"], 10_000);
        assert!(json["search"].as_object().is_some_and(|o| o.is_empty()), "no search key set: the index's defaults");
    }
}
