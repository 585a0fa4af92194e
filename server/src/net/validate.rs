//! Request checks that need no index: vector encoding, k bounds, batch
//! size, settings. Dimension, NaN and k-vs-size are checked by the engine.

use fathom_index::SearchSettings;
use fathom_proto::v1::{self as pb, vector, ElementType};
use tonic::Status;

pub struct Limits {
    pub max_k: usize,
    pub max_batch: usize,
    /// Most postings one request may ask to read: queries x max_postings.
    pub max_request_postings: usize,
    /// Most candidates one request may ask to rerank: queries x rerank.
    pub max_request_rerank: usize,
    /// Most 4 KiB pages one request may read at most (see
    /// [`pages_per_query`]).
    pub max_request_pages: usize,
    /// Largest answer message: a request whose answer could be larger is
    /// refused before any work (the server's max_message_bytes).
    pub max_answer_bytes: usize,
    /// Who refuses, in messages: "server" or "router".
    pub role: &'static str,
}

/// The pages one query may read at the most: every allowed posting read
/// in whole aligned blocks (eps2 prunes some, but `eps2` can turn pruning
/// off), one page per reranked candidate (at least k are read: rows hold
/// the ids), and the prefetched postings' rows.
pub fn pages_per_query(k: usize, s: &SearchSettings) -> usize {
    let postings = s.max_postings.saturating_mul(s.block_pages.max(1));
    let rerank = s.rerank.max(k);
    let prefetch = s.prefetch_postings.saturating_mul(PREFETCH_PAGES_BOUND);
    postings.saturating_add(rerank).saturating_add(prefetch)
}

/// Pages of one posting's own rows counted for prefetch (postings of
/// ~128 rows of 384-d floats).
const PREFETCH_PAGES_BOUND: usize = 48;

/// Bytes one neighbour can take in an answer: the message's tag and
/// length, a u64 id as a varint (at most 10 bytes and its tag) and a
/// float distance (4 and its tag).
const NEIGHBOR_BYTES: usize = 2 + 11 + 5;
/// Bytes one query's answer can take besides its neighbours (the result
/// message, its statistics and coverage).
const RESULT_OVERHEAD_BYTES: usize = 256;

/// The most bytes an answer to `queries` queries for `k` neighbours takes.
pub fn answer_bytes(queries: usize, k: usize) -> usize {
    queries.saturating_mul(k.saturating_mul(NEIGHBOR_BYTES).saturating_add(RESULT_OVERHEAD_BYTES))
}

impl Limits {
    /// Limits with the default cost caps.
    pub fn new(max_k: usize, max_batch: usize) -> Self {
        // A full batch (1,024) at either layout's default max_postings (32,
        // or 96 with one copy of each vector) fits: 98,304 postings. One
        // query at the largest max_postings (100,000) does not.
        let postings = 1024 * fathom_index::search::settings::ONE_COPY_MAX_POSTINGS;
        Limits {
            max_k,
            max_batch,
            max_request_postings: postings,
            max_request_rerank: 131_072,
            // A full batch at the defaults reads at most 1,024 x (96 + 30)
            // pages: 129,024 (504 MiB); the cap is twice that (1 GiB).
            max_request_pages: 262_144,
            max_answer_bytes: 16 << 20,
            role: "server",
        }
    }

    /// Refuses a request whose settings would make it cost more than the
    /// caps (issue 12: 1,024 queries at max_postings 100,000 read the whole
    /// index 1,024 times).
    pub fn check_cost(&self, queries: usize, k: usize, s: &SearchSettings) -> Result<(), Status> {
        let role = self.role;
        let postings = queries.saturating_mul(s.max_postings);
        if postings > self.max_request_postings {
            return Err(Status::resource_exhausted(format!(
                "{queries} queries x max_postings {} = {postings} postings is above the {role}'s \
                 max_request_postings of {}; lower max_postings or split the batch",
                s.max_postings, self.max_request_postings
            )));
        }
        let rerank = queries.saturating_mul(s.rerank);
        if rerank > self.max_request_rerank {
            return Err(Status::resource_exhausted(format!(
                "{queries} queries x rerank {} = {rerank} is above the {role}'s max_request_rerank of {}; \
                 lower rerank or split the batch",
                s.rerank, self.max_request_rerank
            )));
        }
        let per_query = pages_per_query(k, s);
        let pages = queries.saturating_mul(per_query);
        if pages > self.max_request_pages {
            return Err(Status::resource_exhausted(format!(
                "{queries} queries could read {pages} pages ({per_query} each: max_postings {} x block_pages {} + \
                 max(rerank {}, k {k}) + prefetch_postings {} x {PREFETCH_PAGES_BOUND}), above the {role}'s \
                 max_request_pages of {}; lower block_pages, max_postings, rerank, k or prefetch_postings, or \
                 split the batch",
                s.max_postings, s.block_pages, s.rerank, s.prefetch_postings, self.max_request_pages
            )));
        }
        let bytes = answer_bytes(queries, k);
        if bytes > self.max_answer_bytes {
            return Err(Status::resource_exhausted(format!(
                "the answer to {queries} queries x k = {k} could take {bytes} bytes, above the {role}'s \
                 max_message_bytes of {}; lower k or split the batch",
                self.max_answer_bytes
            )));
        }
        Ok(())
    }
}

/// A query as the engine takes it: floats, or a packed binary code.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryVec {
    Floats(Vec<f32>),
    Code(Vec<u8>),
}

impl QueryVec {
    pub fn as_query(&self) -> fathom_index::Query<'_> {
        match self {
            QueryVec::Floats(f) => fathom_index::Query::Floats(f),
            QueryVec::Code(c) => fathom_index::Query::Code(c),
        }
    }
}

/// The query, decoded from its wire form.
pub fn vector(v: Option<&pb::Vector>, field: &str) -> Result<QueryVec, Status> {
    let data =
        v.and_then(|v| v.data.as_ref()).ok_or_else(|| Status::invalid_argument(format!("{field} is required")))?;
    if let vector::Data::Packed(p) = data {
        if p.element_type == ElementType::Bits as i32 {
            return Ok(QueryVec::Code(p.data.clone()));
        }
    }
    floats(data, field).map(QueryVec::Floats)
}

fn floats(data: &vector::Data, field: &str) -> Result<Vec<f32>, Status> {
    match data {
        vector::Data::Floats(f) => Ok(f.values.clone()),
        vector::Data::Packed(p) => {
            let et = ElementType::try_from(p.element_type).map_err(|_| {
                Status::invalid_argument(format!(
                    "{field}.packed.element_type {} is not a known element type",
                    p.element_type
                ))
            })?;
            match et {
                ElementType::Unspecified => Err(Status::invalid_argument(format!(
                    "{field}.packed.element_type must be set (F32, U8, I8 or BITS)"
                ))),
                ElementType::F32 => {
                    if p.data.len() % 4 != 0 {
                        return Err(Status::invalid_argument(format!(
                            "{field}.packed.data has {} bytes, not a multiple of 4 for F32",
                            p.data.len()
                        )));
                    }
                    Ok(p.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                }
                ElementType::U8 => Ok(p.data.iter().map(|&b| b as f32).collect()),
                ElementType::I8 => Ok(p.data.iter().map(|&b| b as i8 as f32).collect()),
                ElementType::Bits => Err(Status::internal("packed bits reached the float decoder")),
            }
        }
    }
}

/// A batch holds 1..=max_batch queries; `who` is "server" or "router".
/// A validated search: the queries, k and the settings (within the cost caps).
pub type Checked = (Vec<QueryVec>, usize, SearchSettings);

/// Every check of a SearchRequest that needs no index.
pub fn search_request(m: &pb::SearchRequest, limits: &Limits, defaults: &SearchSettings) -> Result<Checked, Status> {
    let q = vector(m.vector.as_ref(), "vector")?;
    let k = k(m.k, limits)?;
    let s = settings(m.settings.as_ref(), defaults)?;
    limits.check_cost(1, k, &s)?;
    Ok((vec![q], k, s))
}

/// Every check of a BatchSearchRequest that needs no index.
pub fn batch_request(
    m: &pb::BatchSearchRequest,
    limits: &Limits,
    defaults: &SearchSettings,
) -> Result<Checked, Status> {
    batch_len(m.vectors.len(), limits)?;
    let qs = m
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| vector(Some(v), &format!("vectors[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let k = k(m.k, limits)?;
    let s = settings(m.settings.as_ref(), defaults)?;
    limits.check_cost(qs.len(), k, &s)?;
    Ok((qs, k, s))
}

pub fn batch_len(n: usize, limits: &Limits) -> Result<(), Status> {
    if n == 0 {
        return Err(Status::invalid_argument("vectors must hold at least one query"));
    }
    if n > limits.max_batch {
        return Err(Status::resource_exhausted(format!(
            "batch of {n} queries is above the {}'s max_batch of {}",
            limits.role, limits.max_batch
        )));
    }
    Ok(())
}

pub fn k(k: u32, limits: &Limits) -> Result<usize, Status> {
    let k = k as usize;
    if k == 0 {
        return Err(Status::invalid_argument("k must be at least 1"));
    }
    if k > limits.max_k {
        return Err(Status::invalid_argument(format!(
            "k = {k} is above the {}'s max_k of {}",
            limits.role, limits.max_k
        )));
    }
    Ok(k)
}

/// Request settings over the server defaults, validated.
pub fn settings(s: Option<&pb::SearchSettings>, defaults: &SearchSettings) -> Result<SearchSettings, Status> {
    let mut out = *defaults;
    if let Some(s) = s {
        if let Some(v) = s.max_postings {
            out.max_postings = v as usize;
        }
        if let Some(v) = s.eps2 {
            out.eps2 = v;
        }
        if let Some(v) = s.rerank {
            out.rerank = v as usize;
        }
        if let Some(v) = s.probe_groups {
            out.probe_groups = v as usize;
        }
        if let Some(v) = s.prefetch_postings {
            out.prefetch_postings = v as usize;
        }
        if let Some(v) = s.page_mates {
            out.page_mates = v;
        }
        if let Some(v) = s.block_pages {
            out.block_pages = v as usize;
        }
        if let Some(v) = s.early_rerank {
            out.early_rerank = v;
        }
    }
    out.validate().map_err(|e| Status::invalid_argument(format!("settings: {e}")))?;
    Ok(out)
}

pub fn to_pb_settings(s: &SearchSettings) -> pb::SearchSettings {
    pb::SearchSettings {
        max_postings: Some(s.max_postings as u32),
        eps2: Some(s.eps2),
        rerank: Some(s.rerank as u32),
        probe_groups: Some(s.probe_groups as u32),
        prefetch_postings: Some(s.prefetch_postings as u32),
        page_mates: Some(s.page_mates),
        block_pages: Some(s.block_pages as u32),
        early_rerank: Some(s.early_rerank),
    }
}

/// Parses a `grpc-timeout` header value ("100m", "5S", ...).
pub fn grpc_timeout(v: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_vectors_decode_and_bad_ones_are_named() {
        let p = |et: i32, data: Vec<u8>| pb::Vector {
            data: Some(vector::Data::Packed(pb::PackedVector { element_type: et, data })),
        };
        let f = |v: Vec<f32>| QueryVec::Floats(v);
        assert_eq!(vector(Some(&p(1, 1.5f32.to_le_bytes().to_vec())), "vector").unwrap(), f(vec![1.5]));
        assert_eq!(vector(Some(&p(3, vec![255])), "vector").unwrap(), f(vec![-1.0]));
        assert_eq!(vector(Some(&p(4, vec![7, 0])), "vector").unwrap(), QueryVec::Code(vec![7, 0]));
        assert!(vector(Some(&p(0, vec![])), "vector").unwrap_err().message().contains("element_type"));
        assert!(vector(Some(&p(9, vec![])), "vector").unwrap_err().message().contains("not a known"));
        assert!(vector(Some(&p(1, vec![0; 3])), "vector").unwrap_err().message().contains("multiple of 4"));
        assert!(vector(None, "vector").unwrap_err().message().contains("required"));
    }

    /// Every search setting has one name in the engine, the proto, the
    /// server's `[search]` config, docs/TUNING.md's table and `fathom bench`.
    #[test]
    fn a_full_batch_at_any_index_defaults_is_within_the_cost_caps() {
        let limits = Limits::new(1000, 1024);
        let one_copy = fathom_index::search::settings::ONE_COPY_MAX_POSTINGS;
        for max_postings in [SearchSettings::default().max_postings, one_copy] {
            let s = SearchSettings { max_postings, ..SearchSettings::default() };
            assert!(limits.check_cost(1024, 10, &s).is_ok(), "max_postings {max_postings}");
            assert!(limits.check_cost(1024, 100, &s).is_ok(), "max_postings {max_postings}, k 100");
        }
        let costly = SearchSettings { max_postings: 1000, ..SearchSettings::default() };
        assert_eq!(limits.check_cost(1024, 10, &costly).unwrap_err().code(), tonic::Code::ResourceExhausted);
        let whole = SearchSettings {
            max_postings: fathom_index::search::settings::MAX_POSTINGS_LIMIT,
            ..SearchSettings::default()
        };
        assert_eq!(limits.check_cost(1, 10, &whole).unwrap_err().code(), tonic::Code::ResourceExhausted);
    }

    /// issue 26 (7, 8): the caps count pages (block_pages, k, prefetch), not
    /// postings, and an answer's size before the work.
    #[test]
    fn the_caps_count_pages_and_answer_bytes() {
        let limits = Limits::new(1000, 1024);
        // The reported attack: 1,024 x (96 postings x 32 pages + 1,000).
        let attack =
            SearchSettings { max_postings: 96, rerank: 128, block_pages: 32, eps2: 1e30, ..Default::default() };
        let e = limits.check_cost(1024, 1000, &attack).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(e.message().contains("block_pages") && e.message().contains("max_request_pages"), "{}", e.message());
        let wide = SearchSettings { block_pages: 32, ..Default::default() };
        assert!(limits.check_cost(1024, 10, &wide).is_err(), "block_pages counts");
        assert!(limits.check_cost(1, 10, &wide).is_ok());
        // 1,024 x k = 1,000 could not be sent back in 16 MiB.
        let small = Limits { max_request_pages: usize::MAX, ..Limits::new(1000, 1024) };
        let e = small.check_cost(1024, 1000, &SearchSettings::default()).unwrap_err();
        assert!(e.message().contains("max_message_bytes"), "{}", e.message());
        assert!(small.check_cost(64, 1000, &SearchSettings::default()).is_ok());
    }

    #[test]
    fn search_settings_agree_everywhere() {
        let engine: Vec<&str> = crate::ops::layers::field_names::<SearchSettings>().to_vec();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let want = sorted(engine.iter().map(|s| s.to_string()).collect());
        let overrides: Vec<String> =
            crate::ops::layers::field_names::<fathom_index::SearchOverrides>().iter().map(|s| s.to_string()).collect();
        assert_eq!(sorted(overrides), want, "the configuration's [search] keys");
        let proto = include_str!("../../../proto/fathom.proto");
        let msg = proto.split("message SearchSettings {").nth(1).and_then(|m| m.split('}').next()).unwrap();
        let in_proto: Vec<String> = msg
            .lines()
            .filter_map(|l| l.trim().strip_prefix("optional "))
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(String::from)
            .collect();
        assert_eq!(sorted(in_proto), want, "proto SearchSettings");
        let example = include_str!("../../../deploy/fathom.example.toml");
        let section = example.split("[search]").nth(1).unwrap();
        let in_config: Vec<String> = section
            .lines()
            .filter_map(|l| l.trim().trim_start_matches("# ").split_once(" = "))
            .map(|(k, _)| k.trim().to_string())
            .collect();
        assert_eq!(sorted(in_config), want, "deploy/fathom.example.toml [search]");
        let tuning = include_str!("../../../docs/TUNING.md");
        let table = tuning.split("## Search settings").nth(1).and_then(|t| t.split("\n\n").nth(1)).unwrap();
        let in_readme: Vec<String> =
            table.lines().skip(2).filter_map(|l| l.split('`').nth(1)).map(String::from).collect();
        assert_eq!(sorted(in_readme), want, "docs/TUNING.md search settings table");
        // The wire round trip keeps every setting.
        let s = SearchSettings {
            page_mates: false,
            block_pages: 4,
            prefetch_postings: 3,
            early_rerank: 0.25,
            ..SearchSettings::default()
        };
        assert_eq!(settings(Some(&to_pb_settings(&s)), &SearchSettings::default()).unwrap(), s);
        // Out of range: a clear invalid-argument error naming the setting.
        for bad in [0.0, 1.5, f32::NAN] {
            let pb = pb::SearchSettings { early_rerank: Some(bad), ..Default::default() };
            let e = settings(Some(&pb), &SearchSettings::default()).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains("early_rerank"), "{}", e.message());
        }
        // fathom bench sweeps or sets each one.
        let bench = include_str!("../cli/bench.rs");
        for flag in [
            "max_postings",
            "eps2",
            "rerank",
            "probe_groups",
            "block_pages",
            "prefetch",
            "early_rerank",
            "no_page_mates",
        ] {
            assert!(bench.contains(&format!("    {flag}: ")), "fathom bench has no --{flag}");
        }
    }

    #[test]
    fn timeouts_parse() {
        assert_eq!(grpc_timeout("100m"), Some(std::time::Duration::from_millis(100)));
        assert_eq!(grpc_timeout("2S"), Some(std::time::Duration::from_secs(2)));
        assert_eq!(grpc_timeout("x"), None);
    }
}
