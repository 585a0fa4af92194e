//! The offline builder: input file -> index directory.
//!
//! Stages: (1) sample; (2) hierarchical balanced clustering of the sample
//! into leaves (postings) and the centroid index, whose lookup (group scan
//! or graph) is chosen by measurement (`lookup.rs`); (3) stream every
//! vector: nearest centroids (a tile at a time for the group scan,
//! `blocked.rs`), closure assignment to up to R postings, encode, spill
//! entries and full vectors by posting range, then a checkpoint from which
//! a killed build resumes (`checkpoint.rs`); (4) write full vectors grouped
//! by their nearest posting, so a query's rerank candidates share pages;
//! (5) read the spill back bucket by bucket and write page-packed postings;
//! (6) resident row codes; (7) centroids, directory, manifest; publish the
//! temporary directory atomically.

mod blocked;
mod checkpoint;
mod lookup;
mod policy;

pub mod progress;
mod resident;
mod rows;
mod source;
mod spill;
mod stream;
pub mod writer;

pub use crate::format::build_params::BuildParams;
pub use progress::{NoProgress, ProgressSink};
pub use rows::shard_of;

use crate::centroids::CentroidIndex;
use crate::cluster::hierarchy::{self, SplitParams};
use crate::distance::kernels;
use crate::error::{BuildError, Result};
use crate::format::header::{FileKind, FORMAT_VERSION};
use crate::format::layout::{self, place_posting, PostingRef, VectorLayout};
use crate::format::manifest::{BuildStats, CodeKind, FileEntry};
use crate::format::{self as fmt, Manifest, PAGE_BYTES};
use crate::input::VectorFile;
use crate::quant::{Pq, Quantizer, Sq8};
use rows::Rows;
use source::Source;
use spill::Spill;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use writer::{BodyWriter, TempBuildDir};

/// What a build produced and how long its stages took (timings are kept out
/// of the manifest so that the index bytes are deterministic).
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub manifest: Manifest,
    pub stage_seconds: BTreeMap<String, f64>,
    pub total_seconds: f64,
}

/// Builds an index of `input` at `out` (which must not exist).
pub fn build(input: &Path, out: &Path, params: &BuildParams, progress: &dyn ProgressSink) -> Result<BuildReport> {
    params.validate()?;
    if out.exists() {
        return Err(BuildError::OutputExists(out.to_path_buf()).into());
    }
    let file = VectorFile::open(input)?;
    if file.count == 0 {
        return Err(BuildError::EmptyInput(0).into());
    }
    // Ids and the shard's rows are checked before anything is written.
    let rows = Rows::open(params, file.count)?;
    if rows.kept == 0 {
        return Err(BuildError::BadParam {
            name: "shard",
            what: format!(
                "shard {} of {} holds none of the {} input rows",
                params.shard, params.shard_count, file.count
            ),
        }
        .into());
    }
    if rows.kept > u32::MAX as u64 {
        return Err(BuildError::BadParam {
            name: "input",
            what: format!("{} vectors in one index exceed 2^32 rows; split it with --shards", rows.kept),
        }
        .into());
    }
    let started = Instant::now();
    let kern = kernels();
    let n = rows.kept;
    let metric = params.metric;
    let (mut tmp, adopted) = TempBuildDir::create(out, params.resume)?;
    let src = Source::for_build(file, params, progress)?;
    let dim = src.dim;
    let input_bytes = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    let identity = checkpoint::Identity { requested: params.clone(), input_bytes, ids_crc: rows.ids_crc };
    let resumed = match adopted {
        true => checkpoint::load(&tmp.path, &identity, &src, progress).inspect_err(|_| {
            // Refused: the interrupted build stays as it was, resumable.
            tmp.keep();
        })?,
        false => None,
    };
    let (planned, mut stage_seconds) = match resumed {
        Some(r) => r,
        None => {
            let mut stage_seconds = BTreeMap::new();
            let planned = plan_and_assign(&src, &rows, params, &tmp.path, progress, &mut stage_seconds)?;
            checkpoint::save(&tmp.path, &identity, &planned, &stage_seconds)?;
            (planned, stage_seconds)
        }
    };
    let Planned { params: resolved, quantizer, code_kind, row_codec, probes, lookup, cindex, assigned, spill, vspill } =
        planned;
    let params = &resolved;
    let postings = cindex.posting_count() as u32;
    let element = src.stored_element();
    let vlayout = VectorLayout::new(layout::VECTOR_ID_BYTES + src.stored_bytes());
    let code_bytes = quantizer.code_bytes();
    let entry_ids = quantizer.entries_hold_ids();

    // 4. Vectors, in home-posting order; rows of posting p start at home_start[p].
    let t = Instant::now();
    progress.stage("vectors", 0);
    let (vectors_file, page_crcs) = stream::write_vectors(&vspill, vlayout, &tmp.path.join(fmt::VECTORS_FILE))?;
    let _ = std::fs::remove_dir_all(tmp.path.join("spill-vectors"));
    let mut home_start = Vec::with_capacity(postings as usize);
    let mut acc = 0u64;
    for &c in &assigned.primaries {
        home_start.push(acc as u32);
        acc += c as u64;
    }
    progress.finish_stage();
    stage_seconds.insert("vectors".into(), t.elapsed().as_secs_f64());

    // 5. Postings.
    let t = Instant::now();
    progress.stage("postings", postings as u64);
    let postings_path = tmp.path.join(fmt::POSTINGS_FILE);
    let (refs, posting_stats) = write_postings(
        &spill,
        &PostingShape { postings, code_bytes, max_len: params.max_posting_len(), entry_ids },
        &home_start,
        &postings_path,
        progress,
    )?;
    let _ = std::fs::remove_dir_all(tmp.path.join("spill"));
    progress.finish_stage();
    stage_seconds.insert("postings".into(), t.elapsed().as_secs_f64());

    // 6. Resident row codes.
    let mut files = BTreeMap::new();
    let resident_codes = match row_codec {
        Some(codec) => {
            let t = Instant::now();
            progress.stage("codes", n);
            let sources = resident::CodeSources {
                postings_path: &postings_path,
                vectors_path: &tmp.path.join(fmt::VECTORS_FILE),
                refs: &refs,
                layout: vlayout,
                element,
                metric,
                rows: n,
            };
            let written = resident::write_codes(&sources, &codec, &probes, &tmp.path.join(fmt::CODES_FILE), progress)?;
            tracing::info!(margin = written.rerank_margin, "rerank margin measured on {} probes", probes.len() / dim);
            files.insert(fmt::CODES_FILE.to_string(), written.file);
            progress.finish_stage();
            stage_seconds.insert("codes".into(), t.elapsed().as_secs_f64());
            Some(crate::format::manifest::ResidentCodesInfo {
                entries: written.entries,
                codec,
                rerank_margin: written.rerank_margin,
            })
        }
        None => None,
    };

    // 7. Centroids, directory, manifest.
    files.insert(fmt::POSTINGS_FILE.to_string(), posting_stats.file);
    files.insert(fmt::VECTORS_FILE.to_string(), vectors_file);
    let centroids = crate::centroids::file::encode_centroids(&cindex);
    let entry = crate::format::files::write_small(&tmp.path, fmt::CENTROIDS_FILE, FileKind::Centroids, &centroids)?;
    files.insert(fmt::CENTROIDS_FILE.to_string(), entry);
    let directory = layout::encode_directory(&refs, &page_crcs);
    let entry = crate::format::files::write_small(&tmp.path, fmt::DIRECTORY_FILE, FileKind::Directory, &directory)?;
    files.insert(fmt::DIRECTORY_FILE.to_string(), entry);

    let mut replica_histogram = assigned.replica_histogram;
    while replica_histogram.last() == Some(&0) {
        replica_histogram.pop();
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        metric,
        dim,
        element,
        vector_count: n,
        posting_count: postings,
        centroid_group_count: cindex.group_count() as u32,
        code: code_kind,
        quantizer,
        vector_row_bytes: vlayout.row_bytes as u32,
        vectors_per_page: vlayout.rows_per_page as u32,
        vector_pages: page_crcs.len() as u64,
        build: params.clone(),
        stats: BuildStats {
            posting_entries: posting_stats.entries,
            mean_posting_len: posting_stats.entries as f64 / postings as f64,
            max_posting_len: posting_stats.max_len,
            replica_histogram,
            dropped_replicas: posting_stats.dropped,
            centroid_lookup: Some(lookup),
        },
        files,
        created_by: format!("fathom {}", env!("CARGO_PKG_VERSION")),
        collection_id: collection_id(params, &rows, assigned.input_crc),
        user_ids: rows.user_ids(),
        source: Some(crate::format::manifest::Provenance {
            input_name: input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            input_bytes,
            input_crc32: assigned.input_crc,
            kernels: kern.name.to_string(),
        }),
        resident_codes,
    };
    checkpoint::remove(&tmp.path);
    manifest.write(&tmp.path)?;
    writer::publish(&tmp.path, out)?;
    tmp.keep();
    Ok(BuildReport { manifest, stage_seconds, total_seconds: started.elapsed().as_secs_f64() })
}

/// What the first three stages (sample, cluster, assign) leave for the rest:
/// what a checkpoint holds.
pub(crate) struct Planned {
    /// The parameters with the auto leaf size resolved.
    pub params: BuildParams,
    pub quantizer: Quantizer,
    pub code_kind: CodeKind,
    pub row_codec: Option<std::sync::Arc<fathom_codec::CodecParams>>,
    /// Sample rows that measure the rerank margin of resident codes.
    pub probes: Vec<f32>,
    pub lookup: crate::format::manifest::CentroidLookupStats,
    pub cindex: CentroidIndex,
    pub assigned: stream::Assigned,
    pub spill: Spill,
    pub vspill: Spill,
}

/// Stages 1-3: sample, cluster (and choose the centroid lookup), assign
/// every vector and spill it.
fn plan_and_assign(
    src: &Source,
    rows: &Rows,
    params: &BuildParams,
    tmp: &Path,
    progress: &dyn ProgressSink,
    stage_seconds: &mut BTreeMap<String, f64>,
) -> Result<Planned> {
    let kern = kernels();
    let n = rows.kept;

    // 1. Sample (for an encoded collection, first fit the codec on one).
    let t = Instant::now();
    let dim = src.dim;
    let sample_count = params.sample_count(n, dim);
    progress.stage("sample", sample_count);
    let sample = stream::read_kept_sample(src, rows, sample_count, params.seed, progress)?;
    let sample_count = (sample.len() / dim) as u64;
    progress.finish_stage();
    stage_seconds.insert("sample".into(), t.elapsed().as_secs_f64());

    // 2. Cluster (the resident codes, decided first, set the auto leaf size).
    let t = Instant::now();
    progress.stage("cluster", sample_count);
    let row_codec = fit_row_codes(params, src.stored_bytes(), &sample, dim)?;
    // Probes for the rerank margin: sample rows, spread over the sample.
    let probe_rows = (sample.len() / dim).min(MARGIN_PROBES);
    let stride = (sample.len() / dim / probe_rows.max(1)).max(1);
    let probes: Vec<f32> = sample.chunks_exact(dim).step_by(stride).take(probe_rows).flatten().copied().collect();
    let f32_rows = src.stored_element() == crate::types::ElementType::F32;
    let one_copy = params.one_copy(dim, f32_rows, row_codec.is_some(), n);
    let resolved = BuildParams {
        leaf_size: params.leaf_size_for(row_codec.is_some(), one_copy),
        replicas: params.replicas_for(one_copy),
        pq_subspaces: params.pq_subspaces_auto(dim, one_copy),
        ..params.clone()
    };
    let params = &resolved;
    let leaf_in_sample = ((params.leaf_size as f64) * sample_count as f64 / n as f64).round().max(1.0) as usize;
    let split = SplitParams {
        leaf_size: leaf_in_sample,
        branching: params.branching,
        iters: params.kmeans_iters,
        train_per_cluster: 128,
    };
    let leaves = hierarchy::leaves_with_progress(kern, &sample, dim, split, params.seed, &|n| progress.advance(n));
    let means = hierarchy::leaf_means(&sample, dim, &leaves);
    drop(leaves);
    let (mut groups, _) = CentroidIndex::build(kern, &means, dim, params.seed ^ 0xC3);
    drop(means);
    let postings = groups.posting_count() as u32;
    let quantizer = match (&src.space, params.code) {
        (Some(space), _) => Quantizer::Codes(space.clone()),
        (None, code) => match code {
            CodeKind::Sq8 => Quantizer::Sq8(Sq8::fit(&sample, dim)),
            CodeKind::Pq => {
                groups.add_f16_copy();
                let residuals = residual_sample(&groups, &sample, dim);
                groups.drop_f16_copy();
                Quantizer::Pq(Pq::fit_residual(kern, &residuals, dim, params.pq_subspaces_for(dim), params.seed ^ 0x9))
            }
            CodeKind::F32 => Quantizer::F32 { dim },
            CodeKind::Binary => Quantizer::Binary {
                params: std::sync::Arc::new(
                    fathom_codec::CodecParams::fit(&sample, dim, params.binary_bits, params.seed ^ 0xB1)
                        .map_err(|e| BuildError::BadParam { name: "code", what: e.to_string() })?,
                ),
            },
            CodeKind::Bits => {
                return Err(BuildError::BadParam {
                    name: "code",
                    what: "bits is the code of binary collections: use --bits or --encode binary:u".into(),
                }
                .into())
            }
        },
    };
    let code_kind = if src.space.is_some() { CodeKind::Bits } else { params.code };
    progress.finish_stage();
    stage_seconds.insert("cluster".into(), t.elapsed().as_secs_f64());
    tracing::info!(postings, groups = groups.group_count(), "clustered sample of {sample_count}");

    // 2b. The centroid lookup: groups, graph or the graph walked from the
    // groups, whichever finds more (or the one asked for).
    let t = Instant::now();
    progress.stage("centroids", postings as u64);
    let lookup_rows = (sample.len() / dim).min(LOOKUP_PROBES);
    let stride = (sample.len() / dim / lookup_rows.max(1)).max(1);
    let lookup_probes: Vec<f32> =
        sample.chunks_exact(dim).skip(stride / 2).step_by(stride).take(lookup_rows).flatten().copied().collect();
    drop(sample);
    let (mut cindex, lookup) = lookup::choose(
        kern,
        groups,
        &lookup_probes,
        lookup::Ask {
            effort: params.assign_probe_groups,
            want: params.assign_candidates(),
            seed: params.seed ^ 0x6B,
            force: params.centroid_lookup,
            graph_alone_max_bytes: lookup::GRAPH_ALONE_MAX_BYTES,
        },
        &|n| progress.advance(n),
    );
    progress.finish_stage();
    stage_seconds.insert("centroids".into(), t.elapsed().as_secs_f64());
    tracing::info!(
        method = lookup.method,
        effort = lookup.effort,
        first = lookup.first,
        graph = lookup.graph_first,
        groups = lookup.groups_first,
        beam_factor = lookup.beam_factor,
        cost = lookup.cost,
        groups_cost = lookup.groups_cost,
        "centroid lookup measured on {} sample rows",
        lookup.probes
    );

    // 3. Assign and spill; write full vectors.
    let t = Instant::now();
    let vlayout = VectorLayout::new(layout::VECTOR_ID_BYTES + src.stored_bytes());
    let code_bytes = quantizer.code_bytes();
    let entry_ids = quantizer.entries_hold_ids();
    // A binary collection's entries carry the id beside the code.
    let payload_bytes = code_bytes + if entry_ids { layout::ENTRY_ID_BYTES } else { 0 };
    let record_bytes = spill::RECORD_HEADER_BYTES as u64 + payload_bytes as u64;
    // Sized for every vector in all R postings: an upper bound, so buckets
    // stay within the budget however many replicas the closure keeps.
    let spill_bytes = n * params.replicas as u64 * record_bytes;
    let buckets = spill_bytes.div_ceil((params.memory_budget_bytes / 4).max(1 << 20)).clamp(1, 4096) as u32;
    let mut spill = Spill::create(&tmp.join("spill"), postings, buckets, payload_bytes)?;
    let vbuckets =
        (n * vlayout.row_bytes as u64).div_ceil((params.memory_budget_bytes / 4).max(1 << 20)).clamp(1, 4096);
    let mut vspill = Spill::create(&tmp.join("spill-vectors"), postings, vbuckets as u32, vlayout.row_bytes)?;
    // The assign stage's graph walks score half-float centroids (its
    // closure and the stored centroids stay f32); 58 MB at 10^7 x 96,
    // held while the rest of the build holds far less than at its peak.
    cindex.add_f16_copy();
    progress.stage("assign", n);
    let assigned = stream::assign_all(
        src,
        rows,
        &stream::AssignContext { params, cindex: &cindex, quantizer: &quantizer, effort: lookup.effort },
        &mut spill,
        &mut vspill,
        progress,
    )?;
    progress.finish_stage();
    stage_seconds.insert("assign".into(), t.elapsed().as_secs_f64());
    cindex.drop_f16_copy();
    let params = params.clone();
    Ok(Planned { params, quantizer, code_kind, row_codec, probes, lookup, cindex, assigned, spill, vspill })
}

/// The resident row codes' codec, if any. `auto` keeps them only when they
/// rank this data well (checked on the sample: the codes' best 20 must hold
/// at least [`MIN_CODE_RANKING`] of the exact 10). Embeddings pass (MiniLM
/// 384-d: 0.98); isotropic noise of high dimension does not (a synthetic
/// 256-d Gaussian mixture: 0.63), and there the PQ postings read from disk
/// do better (recall@10 0.96 against 0.48 at rerank 30).
fn fit_row_codes(
    params: &BuildParams,
    row_bytes: usize,
    sample: &[f32],
    dim: usize,
) -> Result<Option<std::sync::Arc<fathom_codec::CodecParams>>> {
    let bits = params.row_code_bits_for(row_bytes);
    if bits == 0 {
        return Ok(None);
    }
    let codec = fathom_codec::CodecParams::fit(sample, dim, bits, params.seed ^ 0xC0DE)
        .map_err(|e| BuildError::BadParam { name: "row_codes", what: e.to_string() })?;
    let metric = if params.metric == crate::types::Metric::Ip { params.metric } else { crate::types::Metric::L2 };
    let check = crate::quant::rowcode::check_codes(kernels(), &codec, sample, metric, 100);
    if params.row_code_bits.is_none() && check.ranking < MIN_CODE_RANKING {
        tracing::info!(
            quality = check.ranking,
            "resident row codes rank this data poorly; none written (--row-codes N forces them)"
        );
        return Ok(None);
    }
    tracing::info!(quality = check.ranking, bits, "resident row codes");
    Ok(Some(std::sync::Arc::new(codec)))
}

/// Sample rows that measure the rerank margin while `codes.bin` is written
/// (each costs one exact distance and one estimate per row).
const MARGIN_PROBES: usize = 64;

/// Sample rows on which the centroid lookups are measured.
const LOOKUP_PROBES: usize = 256;

/// See [`fit_row_codes`].
const MIN_CODE_RANKING: f64 = 0.85;

/// The id shared by the shards of one build: the input's bytes, the ids,
/// every parameter but the shard number.
fn collection_id(params: &BuildParams, rows: &Rows, input_crc: u32) -> String {
    let shared = BuildParams { shard: 0, ..params.clone() };
    let mut h = crc32fast::Hasher::new();
    h.update(serde_json::to_string(&shared).unwrap_or_default().as_bytes());
    h.update(&rows.input_rows.to_le_bytes());
    h.update(&rows.ids_crc.to_le_bytes());
    format!("{input_crc:08x}{:08x}", h.finalize())
}

struct PostingStats {
    file: FileEntry,
    entries: u64,
    max_len: u32,
    dropped: u64,
}

/// What the postings file holds.
struct PostingShape {
    postings: u32,
    code_bytes: usize,
    max_len: usize,
    /// Entries name vector ids (binary collections), not `vectors.bin` rows.
    entry_ids: bool,
}

/// Reads the spill bucket by bucket and writes page-packed postings.
fn write_postings(
    spill: &Spill,
    shape: &PostingShape,
    home_start: &[u32],
    path: &Path,
    progress: &dyn ProgressSink,
) -> Result<(Vec<PostingRef>, PostingStats)> {
    let mut w = BodyWriter::create(path, PAGE_BYTES)?;
    let PostingShape { postings, code_bytes, max_len, .. } = *shape;
    let mut refs = Vec::with_capacity(postings as usize);
    let (mut entries, mut max_seen, mut dropped) = (0u64, 0u32, 0u64);
    let mut bytes_buf = Vec::new();
    for b in 0..spill.bucket_count() {
        let (bytes, mut recs) = spill.read_bucket(b)?;
        // Primaries first, then replicas nearest first; ties by id: a total
        // order, so the output does not depend on spill order.
        recs.sort_unstable_by(|a, b| {
            a.posting
                .cmp(&b.posting)
                .then((a.rank > 0).cmp(&(b.rank > 0)))
                .then(a.dist.total_cmp(&b.dist))
                .then(a.vector.cmp(&b.vector))
        });
        let mut i = 0;
        for p in spill.bucket_range(b, postings) {
            let start = i;
            while i < recs.len() && recs[i].posting == p {
                i += 1;
            }
            let group = &recs[start..i];
            let primaries = group.iter().take_while(|r| r.rank == 0).count();
            let keep = group.len().min(max_len.max(primaries));
            dropped += (group.len() - keep) as u64;
            let kept = &group[..keep];
            bytes_buf.clear();
            // Entries: ids (carried at the front of the payload) or rows.
            let code_from = if shape.entry_ids { layout::ENTRY_ID_BYTES } else { 0 };
            for r in kept {
                if shape.entry_ids {
                    bytes_buf.extend_from_slice(&bytes[r.code_at..r.code_at + code_from]);
                } else {
                    bytes_buf.extend_from_slice(&(home_start[r.home as usize] + r.slot).to_le_bytes());
                }
            }
            for r in kept {
                let at = r.code_at + code_from;
                bytes_buf.extend_from_slice(&bytes[at..at + code_bytes]);
            }
            let at = place_posting(w.body_bytes, bytes_buf.len() as u64);
            w.pad_to(at)?;
            w.write(&bytes_buf)?;
            refs.push(PostingRef {
                offset: PAGE_BYTES as u64 + at,
                count: kept.len() as u32,
                crc: crc32fast::hash(&bytes_buf),
                first_row: home_start[p as usize],
            });
            entries += kept.len() as u64;
            max_seen = max_seen.max(kept.len() as u32);
            progress.advance(1);
        }
        spill.remove_bucket(b);
    }
    // Pad the body to whole pages so O_DIRECT reads of the last page are full.
    let end = w.body_bytes.next_multiple_of(PAGE_BYTES as u64);
    w.pad_to(end)?;
    let file = w.finish_paged(FileKind::Postings)?;
    Ok((refs, PostingStats { file, entries, max_len: max_seen, dropped }))
}

/// Sample rows PQ learns residual codebooks from: up to what
/// [`Pq::fit`] trains on, spread over the sample, each less its nearest
/// centroid (as searches hold it: `groups` holds its half-float copy when
/// searches would) found by a scan of the nearest groups.
fn residual_sample(groups: &CentroidIndex, sample: &[f32], dim: usize) -> Vec<f32> {
    use crate::centroids::{CentroidScore, CentroidScratch};
    use rayon::prelude::*;
    const ROWS: usize = 64 * crate::distance::scalar::CODEWORDS;
    const GROUPS_SCANNED: usize = 8;
    let rows = sample.len() / dim.max(1);
    let stride = rows.div_ceil(ROWS).max(1);
    let picked: Vec<&[f32]> = sample.chunks_exact(dim).step_by(stride).collect();
    picked
        .par_iter()
        .map_init(
            || (CentroidScratch::default(), Vec::new(), Vec::new()),
            |(scratch, near, c), x| {
                groups.nearest(CentroidScore::L2, x, GROUPS_SCANNED, 1, scratch, near);
                let p = near.first().map_or(0, |n| n.0);
                groups.searched_centroid(p, c);
                x.iter().zip(c.iter()).map(|(a, b)| a - b).collect::<Vec<f32>>()
            },
        )
        .flatten()
        .collect()
}
