//! `manifest.json`: what an index is (metric, dimension, element type,
//! counts), how it was built, its quantizer and the size and CRC-32 of every
//! data file. Serde JSON; unknown fields are tolerated so a minor format
//! addition stays readable by older builds. The file ends with its own
//! CRC-32 (`"manifest_crc32"`, over every byte before that key), so an edit
//! of any field is refused at open instead of changing answers.

use crate::error::{FormatError, IoContext};
use crate::format::build_params::BuildParams;
use crate::quant::Quantizer;
use crate::types::{ElementType, Metric};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub bytes: u64,
    pub crc32: u32,
}

/// How posting entries are coded.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    /// Per-dimension scalar quantization to one byte; reranked exactly.
    Sq8,
    /// Product quantization, one byte per sub-vector; reranked exactly.
    Pq,
    /// Full f32 vectors in the postings: exact scores, no rerank reads.
    F32,
    /// Binary bit-planes (BEBR-style codec), 1..4 bits per dimension; reranked exactly.
    Binary,
    /// A binary collection: whole codes in the postings, XOR + popcount
    /// scores, exact for the collection (set by the builder, not chosen).
    Bits,
}

impl CodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Sq8 => "sq8",
            CodeKind::Pq => "pq",
            CodeKind::F32 => "f32",
            CodeKind::Binary => "binary",
            CodeKind::Bits => "bits",
        }
    }
}

impl std::fmt::Display for CodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CodeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sq8" => Ok(CodeKind::Sq8),
            "pq" => Ok(CodeKind::Pq),
            "f32" => Ok(CodeKind::F32),
            "binary" => Ok(CodeKind::Binary),
            o => Err(format!("unknown code {o:?} (expected pq, sq8, binary or f32)")),
        }
    }
}

/// Summary figures of a build, kept for `fathom info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildStats {
    pub posting_entries: u64,
    pub mean_posting_len: f64,
    pub max_posting_len: u32,
    /// `replica_histogram[r]` = number of vectors stored in r+1 postings.
    pub replica_histogram: Vec<u64>,
    /// Replica entries dropped because a posting hit its length bound.
    pub dropped_replicas: u64,
    /// How the builder looks centroids up and how exactly (format 4 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centroid_lookup: Option<CentroidLookupStats>,
}

/// The builder's centroid lookup, measured on sample rows against a scan of
/// every centroid (SPTAG calls it the head index accuracy).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CentroidLookupStats {
    /// `graph`, `hybrid` (the graph walked from a few scanned groups, format
    /// 5 on) or `groups`: what the index stores and searches with.
    pub method: String,
    /// Share of sample rows whose nearest centroid the lookup found.
    pub first: f64,
    /// Share of the exact nearest `want` found.
    pub recall: f64,
    /// `first` of each method (the graph is kept unless groups do better).
    pub graph_first: f64,
    pub groups_first: f64,
    /// `first` of the graph walked from the groups, when it was measured
    /// (the graph alone not kept; format 5 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid_first: Option<f64>,
    pub want: usize,
    pub effort: usize,
    pub probes: usize,
    /// The graph's beam factor (0 with groups).
    pub beam_factor: u32,
    /// Mean distances computed per lookup: the chosen method's, the groups'.
    pub cost: f64,
    pub groups_cost: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub metric: Metric,
    pub dim: usize,
    /// Element type of the stored full-precision vectors.
    pub element: ElementType,
    pub vector_count: u64,
    pub posting_count: u32,
    pub centroid_group_count: u32,
    pub code: CodeKind,
    /// The posting code's parameters.
    pub quantizer: Quantizer,
    pub vector_row_bytes: u32,
    pub vectors_per_page: u32,
    pub vector_pages: u64,
    pub build: BuildParams,
    pub stats: BuildStats,
    pub files: BTreeMap<String, FileEntry>,
    pub created_by: String,
    /// Shared by the shards of one build: a hash of the input's bytes, the
    /// ids, the build parameters but the shard number, and the shard count.
    /// A router refuses to merge shards whose collection ids differ.
    pub collection_id: String,
    /// Ids are the user's (`--ids`), not the input's row numbers.
    pub user_ids: bool,
    /// Where the index came from (absent in indexes built before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Provenance>,
    /// Every vector's code for the in-memory first stage (`codes.bin`);
    /// absent in format 2 and when the build made none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_codes: Option<ResidentCodesInfo>,
}

/// The input an index was built from and how. No times: a build is
/// byte-for-byte reproducible, and times would differ (the build report
/// and `--json` give them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The input file's name (not its directory).
    pub input_name: String,
    pub input_bytes: u64,
    /// CRC-32 of every input row's bytes as stored (also the first half of
    /// `collection_id`).
    pub input_crc32: u32,
    /// The distance kernels used (determinism depends on them: AVX-512,
    /// AVX2 and scalar round differently).
    pub kernels: String,
}

/// What `codes.bin` holds: the codec of its row codes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResidentCodesInfo {
    /// Posting entries listed (the rows of every posting, as in `postings.bin`).
    pub entries: u64,
    #[serde(with = "crate::quant::params_hex")]
    pub codec: std::sync::Arc<fathom_codec::CodecParams>,
    /// Rerank only candidates whose estimate is within est_k + m |est_k|
    /// (est_k: the k-th best estimate), m measured on the sample at build
    /// time (`quant::rowcode::check_codes`); the rerank setting still caps them.
    pub rerank_margin: f32,
}

/// The key of the manifest's own checksum, written last.
const CRC_KEY: &str = "\"manifest_crc32\"";

/// The data files of an index: the only names `files` may hold.
pub const DATA_FILES: [&str; 4] =
    [super::CENTROIDS_FILE, super::DIRECTORY_FILE, super::POSTINGS_FILE, super::VECTORS_FILE];

/// Checks the trailing `"manifest_crc32": N` against the bytes before it.
fn check_crc(text: &str, path: &Path) -> Result<(), FormatError> {
    let bad = |what: String| FormatError::Corrupt { path: path.to_path_buf(), offset: 0, what };
    let at = text.rfind(CRC_KEY).ok_or_else(|| bad("no manifest_crc32: not written by a format 2 build".into()))?;
    let digits: String = text[at + CRC_KEY.len()..].chars().filter(|c| c.is_ascii_digit()).collect();
    let expected: u32 = digits.parse().map_err(|_| bad("manifest_crc32 is not a number".into()))?;
    let found = crc32fast::hash(&text.as_bytes()[..at]);
    if found != expected {
        return Err(FormatError::Checksum { path: path.to_path_buf(), section: "manifest".into(), expected, found });
    }
    Ok(())
}

/// A manifest is JSON of build parameters and codebooks (PQ codebooks of
/// 1,024-d vectors are a few MiB): anything far larger is not one.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self, FormatError> {
        let path = dir.join(super::MANIFEST_FILE);
        let text = super::files::read_regular_text(&path, MAX_MANIFEST_BYTES).at(&path)?;
        Self::parse(&text, path)
    }

    /// A manifest from its text (`path` names it in errors): version,
    /// checksum, fields and their consistency checked.
    pub fn parse(text: &str, path: std::path::PathBuf) -> Result<Self, FormatError> {
        let version: serde_json::Value = serde_json::from_str(text).map_err(|e| FormatError::Corrupt {
            path: path.clone(),
            offset: 0,
            what: format!("not valid JSON: {e}"),
        })?;
        let found = version.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if !(super::MIN_FORMAT_VERSION..=super::MAX_FORMAT_VERSION).contains(&found) {
            return Err(FormatError::UnsupportedVersion {
                path,
                found,
                min: super::MIN_FORMAT_VERSION,
                max: super::MAX_FORMAT_VERSION,
            });
        }
        check_crc(text, &path)?;
        let m: Manifest = serde_json::from_value(version).map_err(|e| FormatError::Corrupt {
            path: path.clone(),
            offset: 0,
            what: format!("manifest fields: {e}"),
        })?;
        m.validate(&path)?;
        Ok(m)
    }

    fn validate(&self, path: &Path) -> Result<(), FormatError> {
        let bad = |what: String| FormatError::Corrupt { path: path.to_path_buf(), offset: 0, what };
        if self.dim == 0 || self.dim > 65_536 {
            return Err(bad(format!("dimension {} out of range", self.dim)));
        }
        if self.posting_count == 0 || self.centroid_group_count == 0 {
            return Err(bad("no postings".into()));
        }
        let qok = match &self.quantizer {
            Quantizer::Sq8(q) => q.min.len() == self.dim && q.scale.len() == self.dim,
            Quantizer::Pq(p) => {
                p.dim == self.dim && p.m >= 1 && p.dsub * p.m >= p.dim && p.centroids.len() == p.m * 256 * p.dsub
            }
            Quantizer::F32 { dim } => *dim == self.dim,
            Quantizer::Binary { params } => params.dim == self.dim,
            Quantizer::Codes(s) => {
                s.dim == self.dim
                    && (1..=fathom_codec::MAX_BITS).contains(&s.planes)
                    && s.scales.len() == s.planes
                    && s.codec.as_ref().is_none_or(|c| c.dim == s.dim && c.bits == s.planes)
                    && self.element == ElementType::Bits
            }
        };
        if !qok {
            return Err(bad("quantizer parameters do not match the dimension".into()));
        }
        // Exactly the four data files (five with resident codes), by plain
        // name: nothing outside the directory.
        let names: Vec<&str> = self.files.keys().map(String::as_str).collect();
        let mut want = DATA_FILES.to_vec();
        if let Some(r) = &self.resident_codes {
            want.push(super::CODES_FILE);
            if r.codec.dim != self.dim {
                return Err(bad("resident code parameters do not match the dimension".into()));
            }
        }
        want.sort_unstable();
        if names != want {
            return Err(bad(format!("files lists {names:?}; this index has exactly {want:?}")));
        }
        let id = crate::format::layout::VECTOR_ID_BYTES as u64;
        let row = match &self.quantizer {
            Quantizer::Codes(s) => id + s.code_bytes() as u64,
            _ => id + self.dim as u64 * self.element.size_bytes() as u64,
        };
        if self.vector_row_bytes as u64 != row || self.vectors_per_page == 0 {
            return Err(bad("vector layout fields disagree with the dimension".into()));
        }
        Ok(())
    }

    pub fn write(&self, dir: &Path) -> Result<(), FormatError> {
        let path = dir.join(super::MANIFEST_FILE);
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| FormatError::BadInput { path: path.clone(), what: e.to_string() })?;
        // Reopen the object to append the checksum of everything before it.
        let body = text.trim_end().strip_suffix('}').unwrap_or(&text).trim_end();
        let head = format!("{body},\n  ");
        let text = format!("{head}{CRC_KEY}: {}\n}}\n", crc32fast::hash(head.as_bytes()));
        crate::format::files::write_synced(&path, text.as_bytes())
    }
}
