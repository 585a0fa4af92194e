//! Resuming a build after its most expensive stage. When assign finishes,
//! the spills are synced and `assign.checkpoint.json` records what the
//! later stages need (resolved parameters, quantizer, centroid lookup
//! choice, per-posting counts) beside `centroids.bin`; a killed build's
//! temporary directory then holds everything to finish. `--resume` adopts
//! that directory only if it belongs to the same build: the same requested
//! parameters (seed included), input size, ids, fathom and format version,
//! and the same input bytes (the input is read once more and its CRC
//! compared with the one assign computed). The finished index is the same,
//! byte for byte, as an uninterrupted build's.

use super::spill::{Spill, SpillShape};
use super::stream::{self, Assigned};
use super::{BuildParams, Planned, ProgressSink};
use crate::error::{BuildError, FormatError, Result};
use crate::format::header::{read_checked, FileKind, FORMAT_VERSION};
use crate::format::manifest::{CentroidLookupStats, CodeKind};
use crate::quant::Quantizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const FILE: &str = "assign.checkpoint.json";
/// Where the checkpoint keeps the centroid index (the same bytes as the
/// final `centroids.bin`).
const CENTROIDS: &str = "checkpoint-centroids.bin";

/// What must match for a checkpoint to be resumed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct Identity {
    /// The parameters as asked for (before the auto leaf size is resolved).
    pub requested: BuildParams,
    pub input_bytes: u64,
    pub ids_crc: u32,
}

/// The row codec, serialised as the manifest does.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Codec(#[serde(with = "crate::quant::params_hex")] std::sync::Arc<fathom_codec::CodecParams>);

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    created_by: String,
    format_version: u32,
    identity: Identity,
    params: BuildParams,
    quantizer: Quantizer,
    code_kind: CodeKind,
    row_codec: Option<Codec>,
    probes: Vec<f32>,
    lookup: CentroidLookupStats,
    assigned: Assigned,
    spill: SpillShape,
    vspill: SpillShape,
    centroids_crc: u32,
    stage_seconds: BTreeMap<String, f64>,
}

fn created_by() -> String {
    format!("fathom {}", env!("CARGO_PKG_VERSION"))
}

/// Records a finished assign stage in `dir` (spills already synced).
pub(super) fn save(dir: &Path, identity: &Identity, p: &Planned, stage_seconds: &BTreeMap<String, f64>) -> Result<()> {
    let centroids = crate::centroids::file::encode_centroids(&p.cindex);
    let entry = crate::format::files::write_small(dir, CENTROIDS, FileKind::Centroids, &centroids)?;
    let cp = Checkpoint {
        created_by: created_by(),
        format_version: FORMAT_VERSION,
        identity: identity.clone(),
        params: p.params.clone(),
        quantizer: p.quantizer.clone(),
        code_kind: p.code_kind,
        row_codec: p.row_codec.clone().map(Codec),
        probes: p.probes.clone(),
        lookup: p.lookup.clone(),
        assigned: p.assigned.clone(),
        spill: p.spill.shape(),
        vspill: p.vspill.shape(),
        centroids_crc: entry.crc32,
        stage_seconds: stage_seconds.clone(),
    };
    let text = serde_json::to_vec(&cp).map_err(|e| BuildError::BadParam { name: "checkpoint", what: e.to_string() })?;
    // Written aside and renamed: a checkpoint is whole or absent.
    let part = dir.join(format!("{FILE}.part"));
    crate::format::files::write_synced(&part, &text)?;
    std::fs::rename(&part, dir.join(FILE)).map_err(|error| FormatError::Io { path: dir.join(FILE), error })?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|error| FormatError::Io { path: dir.into(), error })?;
    Ok(())
}

/// Removes the checkpoint from a finished build (it is not part of an index).
pub(super) fn remove(dir: &Path) {
    for name in [FILE, CENTROIDS] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

fn mismatch(what: String) -> crate::error::IndexError {
    BuildError::BadParam {
        name: "resume",
        what: format!("the interrupted build {what}; build without --resume to start over"),
    }
    .into()
}

/// The state a checkpoint in `dir` holds, once checked against this build;
/// None when `dir` has no checkpoint.
pub(super) fn load(
    dir: &Path,
    identity: &Identity,
    src: &super::source::Source,
    progress: &dyn ProgressSink,
) -> Result<Option<(Planned, BTreeMap<String, f64>)>> {
    let path = dir.join(FILE);
    let Ok(text) = std::fs::read(&path) else {
        return Ok(None);
    };
    let cp: Checkpoint = serde_json::from_slice(&text).map_err(|e| FormatError::Corrupt {
        path: path.clone(),
        offset: 0,
        what: format!("checkpoint is not valid: {e}"),
    })?;
    if cp.created_by != created_by() || cp.format_version != FORMAT_VERSION {
        return Err(mismatch(format!("was made by {} (format {})", cp.created_by, cp.format_version)));
    }
    let mut requested = identity.requested.clone();
    requested.resume = false;
    let mut theirs = cp.identity.requested.clone();
    theirs.resume = false;
    if requested != theirs {
        let show = |p: &BuildParams| serde_json::to_string(p).unwrap_or_default();
        return Err(mismatch(format!("used other parameters: {} (now {})", show(&theirs), show(&requested))));
    }
    if cp.identity.input_bytes != identity.input_bytes || cp.identity.ids_crc != identity.ids_crc {
        return Err(mismatch(format!(
            "read an input of {} bytes (now {}) or other ids",
            cp.identity.input_bytes, identity.input_bytes
        )));
    }
    let crc = stream::input_crc(src, progress)?;
    if crc != cp.assigned.input_crc {
        return Err(mismatch(format!("read other input bytes (CRC {:08x}, now {crc:08x})", cp.assigned.input_crc)));
    }
    let cpath = dir.join(CENTROIDS);
    let body = read_checked(&cpath, FileKind::Centroids)?;
    if crc32fast::hash(&body) != cp.centroids_crc {
        return Err(mismatch("left centroids other than its checkpoint names".into()));
    }
    // One primary count per posting.
    let postings = cp.assigned.primaries.len() as u32;
    let cindex = crate::centroids::file::decode_centroids(&body, &cpath, src.dim, postings)?;
    let spill = Spill::reopen(&dir.join("spill"), cp.spill)?;
    let vspill = Spill::reopen(&dir.join("spill-vectors"), cp.vspill)?;
    tracing::info!("resumed after the assign stage");
    let planned = Planned {
        params: cp.params,
        quantizer: cp.quantizer,
        code_kind: cp.code_kind,
        row_codec: cp.row_codec.map(|c| c.0),
        probes: cp.probes,
        lookup: cp.lookup,
        cindex,
        assigned: cp.assigned,
        spill,
        vspill,
    };
    Ok(Some((planned, cp.stage_seconds)))
}
