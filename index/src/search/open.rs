//! `Index::open`: loads the manifest, centroids (+ their index) and the
//! posting directory, checks every file's header, length and (for the small
//! files) checksum, and opens the large files for direct reads. Query
//! preparation is in `query.rs`.

use super::first_stage::FirstStage;
use super::posting_cache::{self, PostingCache};
use super::resident::ResidentCodes;
use super::searcher::Searcher;
use super::settings::SearchSettings;
use crate::centroids::{CentroidIndex, CentroidScore, LookupCheck, LookupRecall};
use crate::error::{FormatError, QueryError, Result};
use crate::format::header::{read_checked, FileHeader, FileKind};
use crate::format::layout::{self, PostingRef, VectorLayout};
use crate::format::{self as fmt, check, Manifest};
use crate::io::{self, BackendChoice, IoFiles};

use crate::types::Metric;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub backend: BackendChoice,
    /// Open data files with O_DIRECT (falls back when unsupported).
    pub direct_io: bool,
    /// Load `codes.bin` (when the index has one) and score every query's
    /// candidates in memory; off = read posting codes from disk.
    pub resident_codes: bool,
    /// Memory for the posting codes of an index scored from disk: when
    /// all of them fit, they are held and the first stage reads nothing.
    pub memory_budget: MemoryBudget,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            backend: BackendChoice::Auto,
            direct_io: true,
            resident_codes: true,
            memory_budget: MemoryBudget::Auto,
        }
    }
}

/// Why an index has no binary codec ([`Index::binary_codec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCodec {
    /// A collection of raw bit vectors: queries are packed bits.
    RawBits,
    /// Its posting codes are of another kind.
    NotBinary(crate::format::manifest::CodeKind),
}

/// See [`OpenOptions::memory_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBudget {
    /// A tenth of the raw vector bytes, less what the index holds anyway:
    /// the most a default may keep resident.
    Auto,
    /// At most this many bytes (0: posting codes stay on disk).
    Bytes(u64),
}

impl MemoryBudget {
    /// Bytes available for posting codes, given the raw vector bytes and
    /// the bytes the index holds without them.
    pub fn for_postings(self, raw_vector_bytes: u64, held: u64) -> u64 {
        match self {
            MemoryBudget::Auto => (raw_vector_bytes / 10).saturating_sub(held),
            MemoryBudget::Bytes(b) => b,
        }
    }
}

/// An open index: what stays in memory, shared by all searchers.
pub struct Index {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) centroids: CentroidIndex,
    pub(crate) postings: Vec<PostingRef>,
    pub(crate) vector_page_crcs: Vec<u32>,
    pub(crate) vector_layout: VectorLayout,
    /// Pages in `postings.bin`, header included.
    pub(crate) postings_file_pages: u64,
    pub(crate) files: Arc<IoFiles>,
    pub(crate) backend: BackendChoice,
    /// Where searches score candidates from, chosen here once: every
    /// row's code when loaded, else every posting's codes when they fit
    /// the memory budget, else the postings on disk.
    pub(crate) first_stage: FirstStage,
}

impl Index {
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<Arc<Index>> {
        let manifest = Manifest::read(dir)?;
        check::file_lengths(dir, &manifest)?;
        let cpath = dir.join(fmt::CENTROIDS_FILE);
        let mut centroids = crate::centroids::file::decode_centroids(
            &read_checked(&cpath, FileKind::Centroids)?,
            &cpath,
            manifest.dim,
            manifest.posting_count,
        )?;
        centroids.compact_for_search();
        let dpath = dir.join(fmt::DIRECTORY_FILE);
        let (postings, vector_page_crcs) = layout::decode_directory(
            &read_checked(&dpath, FileKind::Directory)?,
            &dpath,
            manifest.posting_count,
            manifest.vector_pages,
        )?;
        let ppath = dir.join(fmt::POSTINGS_FILE);
        let vpath = dir.join(fmt::VECTORS_FILE);
        for p in [&ppath, &vpath] {
            fmt::files::check_regular(p).map_err(|error| FormatError::Io { path: p.clone(), error })?;
        }
        let files = Arc::new(IoFiles::open(&[ppath.clone(), vpath.clone()], opts.direct_io)?);
        // Headers are read through buffered handles: O_DIRECT forbids a 64-byte read.
        let pf = std::fs::File::open(&ppath).map_err(|error| FormatError::Io { path: ppath.clone(), error })?;
        let ph = FileHeader::read(&pf, FileKind::Postings, &ppath)?;
        let vf = std::fs::File::open(&vpath).map_err(|error| FormatError::Io { path: vpath.clone(), error })?;
        let vh = FileHeader::read(&vf, FileKind::Vectors, &vpath)?;
        check::headers_name_listed_crcs(
            &manifest,
            [(&ph, fmt::POSTINGS_FILE, &ppath), (&vh, fmt::VECTORS_FILE, &vpath)],
        )?;
        let postings_end = ph.header_bytes as u64 + ph.body_bytes;
        check::postings_within(&postings, &manifest, (ph.header_bytes as u64, postings_end), &dpath, &ppath)?;
        let vector_layout = VectorLayout::new(manifest.vector_row_bytes as usize);
        check::vector_pages(vector_layout, &manifest, vh.body_bytes, &vpath)?;
        let resident = match (&manifest.resident_codes, opts.resident_codes) {
            (Some(info), true) => {
                let path = dir.join(fmt::CODES_FILE);
                Some(ResidentCodes::decode(
                    &read_checked(&path, FileKind::Codes)?,
                    &path,
                    postings.len(),
                    manifest.vector_count,
                    info.entries,
                    info.codec.clone(),
                    manifest.metric,
                )?)
            }
            _ => None,
        };
        let mut manifest = manifest;
        if let (Some(rc), Some(info)) = (&resident, &mut manifest.resident_codes) {
            // Float queries all go to the resident codes: the disk path's
            // PQ codebooks (256 x dim floats) would only take memory, and
            // the manifest's copy of the codec shares the codes' (whose f32
            // rotation may have been dropped for half floats).
            manifest.quantizer.release_posting_tables();
            info.codec = rc.codec.clone();
        }
        let (backend, why) = io::probe_backend(opts.backend);
        if opts.backend == BackendChoice::Auto && backend == BackendChoice::Pread {
            tracing::warn!(
                "{why}: reading with pread instead (in a container the runtime's default seccomp profile \
                 blocks io_uring; see deploy/README.md)"
            );
        }
        tracing::info!(
            dir = %dir.display(),
            vectors = manifest.vector_count,
            postings = manifest.posting_count,
            backend = ?backend,
            direct_io = files.direct,
            "index opened ({why})"
        );
        let mut index = Index {
            dir: dir.to_path_buf(),
            manifest,
            centroids,
            postings,
            vector_page_crcs,
            vector_layout,
            postings_file_pages: postings_end / fmt::PAGE_BYTES as u64,
            files,
            backend,
            first_stage: resident.map_or(FirstStage::Disk, FirstStage::Resident),
        };
        if let FirstStage::Disk = index.first_stage {
            if let Some(cache) = index.load_posting_cache(&ppath, opts.memory_budget)? {
                index.first_stage = FirstStage::Held(cache);
            }
        }
        Ok(Arc::new(index))
    }

    /// The index's manifest: what was built, how, and its files.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory the index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The posting centroids and their lookup, as held for search.
    pub fn centroids(&self) -> &CentroidIndex {
        &self.centroids
    }

    /// The binary codec of an index whose codes come from one (`--code
    /// binary`, `--encode binary:U`): what a client needs to encode its
    /// queries itself.
    pub fn binary_codec(&self) -> Result<&fathom_codec::CodecParams, NoCodec> {
        use crate::quant::Quantizer;
        match &self.manifest.quantizer {
            Quantizer::Binary { params } => Ok(params),
            Quantizer::Codes(space) => space.codec.as_deref().ok_or(NoCodec::RawBits),
            _ => Err(NoCodec::NotBinary(self.manifest.code)),
        }
    }

    /// Where searches score candidates from: "resident" (row codes in
    /// memory), "held" (posting codes in memory) or "disk".
    pub fn first_stage_name(&self) -> &'static str {
        self.first_stage.name()
    }

    /// Every row's code, when they serve the first stage.
    pub fn resident_codes(&self) -> Option<&ResidentCodes> {
        match &self.first_stage {
            FirstStage::Resident(rc) => Some(rc),
            _ => None,
        }
    }

    /// Every posting's codes, when held in memory.
    pub fn held_posting_codes(&self) -> Option<&PostingCache> {
        match &self.first_stage {
            FirstStage::Held(cache) => Some(cache),
            _ => None,
        }
    }

    /// Whether every posting's codes are held in memory.
    pub fn posting_codes_held(&self) -> bool {
        matches!(self.first_stage, FirstStage::Held(_))
    }

    /// Bytes the posting codes take held in memory, for an index whose
    /// searches score them (none with resident row codes loaded).
    pub fn posting_codes_bytes(&self) -> Option<u64> {
        if matches!(self.first_stage, FirstStage::Resident(_)) || !self.manifest.quantizer.scores_postings() {
            return None;
        }
        Some(posting_cache::cached_bytes(&self.postings, self.entry_shape(), self.rows_implicit()))
    }

    fn entry_shape(&self) -> posting_cache::EntryShape {
        let q = &self.manifest.quantizer;
        let keys_are_rows = !q.entries_hold_ids();
        posting_cache::EntryShape {
            entry_bytes: layout::entry_bytes(q),
            key_bytes: if keys_are_rows { layout::ENTRY_ROW_BYTES } else { layout::ENTRY_ID_BYTES },
            keys_are_rows,
        }
    }

    /// Whether held posting codes can leave their rows out (one copy of
    /// each vector; see [`posting_cache::rows_implicit`]).
    fn rows_implicit(&self) -> bool {
        posting_cache::rows_implicit(&self.postings, self.entry_shape(), &|p| self.home_rows(p))
    }

    /// The posting codes, when the index scores them and they fit `budget`.
    fn load_posting_cache(&self, path: &Path, budget: MemoryBudget) -> Result<Option<PostingCache>> {
        let Some(want) = self.posting_codes_bytes() else {
            return Ok(None);
        };
        let row_bytes = (self.manifest.vector_row_bytes as u64).saturating_sub(layout::VECTOR_ID_BYTES as u64);
        let raw = self.manifest.vector_count * row_bytes;
        let allowed = budget.for_postings(raw, self.resident_bytes());
        if want > allowed {
            tracing::info!(want, allowed, "posting codes stay on disk (they do not fit the memory budget)");
            return Ok(None);
        }
        tracing::info!(bytes = want, "posting codes held in memory");
        let homes = |p| self.home_rows(p);
        let implicit = self.rows_implicit().then_some(&homes as &dyn Fn(u32) -> std::ops::Range<u32>);
        Ok(Some(PostingCache::load(path, &self.postings, self.entry_shape(), implicit)?))
    }

    pub fn dim(&self) -> usize {
        self.manifest.dim
    }

    /// The search settings this index answers with when a caller sets
    /// none: [`SearchSettings::default`], but [`ONE_COPY_MAX_POSTINGS`]
    /// postings for an index that stores one copy of each vector (its
    /// postings are ~4.6x shorter per vector they are home to).
    ///
    /// [`ONE_COPY_MAX_POSTINGS`]: super::settings::ONE_COPY_MAX_POSTINGS
    pub fn default_settings(&self) -> SearchSettings {
        let m = &self.manifest;
        let one_copy = m.stats.posting_entries <= m.vector_count && !m.quantizer.entries_hold_ids();
        let base = SearchSettings::default();
        if one_copy {
            SearchSettings { max_postings: super::settings::ONE_COPY_MAX_POSTINGS, ..base }
        } else {
            base
        }
    }

    pub fn metric(&self) -> Metric {
        self.manifest.metric
    }

    pub fn len(&self) -> u64 {
        self.manifest.vector_count
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.vector_count == 0
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            BackendChoice::Pread => "pread",
            _ => "io_uring",
        }
    }

    /// Reads submitted to the disk and not yet completed, all searchers.
    pub fn reads_in_flight(&self) -> i64 {
        self.files.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether data files bypass the page cache.
    pub fn direct_io(&self) -> bool {
        self.files.direct
    }

    /// Bytes this index keeps in memory: centroids, their groups and graph,
    /// the posting directory, vector page checksums, quantizer parameters,
    /// resident codes.
    pub fn resident_bytes(&self) -> u64 {
        (self.centroids.resident_bytes()
            + self.postings.len() * std::mem::size_of::<PostingRef>()
            + self.vector_page_crcs.len() * 4
            + self.manifest.quantizer.resident_bytes()) as u64
            + match &self.first_stage {
                FirstStage::Disk => 0,
                FirstStage::Held(cache) => cache.resident_bytes(),
                FirstStage::Resident(rc) => rc.resident_bytes(),
            }
    }

    /// A searcher with its own I/O backend (a ring for io_uring).
    pub fn searcher(self: &Arc<Self>) -> Result<Searcher> {
        Searcher::new(self.clone(), io::make_reader(self.backend, self.files.clone())?)
    }

    /// Rows of `vectors.bin` holding the vectors whose nearest posting is `p`.
    pub fn home_rows(&self, p: u32) -> std::ops::Range<u32> {
        let start = self.postings[p as usize].first_row;
        let end = self.postings.get(p as usize + 1).map_or(self.manifest.vector_count as u32, |n| n.first_row);
        start..end
    }

    /// The code space of a binary collection.
    pub fn code_space(&self) -> Option<&crate::quant::CodeSpace> {
        match &self.manifest.quantizer {
            crate::quant::Quantizer::Codes(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes of a packed query code (binary collections only).
    /// The served version's name: the index directory's last component.
    pub fn version(&self) -> String {
        self.dir.file_name().map_or_else(|| self.dir.display().to_string(), |n| n.to_string_lossy().into_owned())
    }

    pub fn code_bytes(&self) -> Option<usize> {
        self.code_space().map(|s| s.code_bytes())
    }

    /// How the centroid lookup scores this index's centroids.
    pub fn centroid_score(&self) -> CentroidScore {
        if self.metric() == Metric::Ip {
            CentroidScore::NegIp
        } else {
            CentroidScore::L2
        }
    }

    /// Measures the centroid lookup at `settings` on float `queries`
    /// (row-major): the share of the exact nearest `max_postings` centroids
    /// it finds, against a scan of every centroid (one per query, so keep
    /// the query count small at 10^5 centroids and up).
    pub fn centroid_recall(&self, queries: &[f32], settings: &SearchSettings) -> Result<LookupRecall, QueryError> {
        let mut prepared = Vec::with_capacity(queries.len());
        for q in queries.chunks_exact(self.dim().max(1)) {
            prepared.extend(self.prepare_query(q, 1)?);
        }
        let check = LookupCheck::new(&self.centroids, self.centroid_score(), &prepared, settings.max_postings);
        let (how, c) = (self.centroid_score(), &self.centroids);
        let mut found = check.measure_with(self.dim(), |q, s, out| {
            c.nearest_for_search(how, q, settings.probe_groups, settings.max_postings, s, out)
        });
        found.effort = settings.probe_groups;
        Ok(found)
    }

    /// Verifies the large files: streamed in 1 MiB chunks (memory stays
    /// flat), each vector page against its checksum and each file's body
    /// against the manifest's; on a body mismatch in `postings.bin`, each
    /// posting against its own checksum. The error names the damaged
    /// vector page or posting. Reads every byte: at the disk's sequential
    /// rate (10^6 x 96, 434 MB: 0.28-0.31 s cold, 43 MB resident).
    pub fn verify(&self) -> Result<()> {
        Ok(check::large_files(&self.dir, &self.manifest, &self.vector_page_crcs, &self.postings)?)
    }
}
