//! `centroids.bin`'s body: the centroids, their groups and, from format 4,
//! the centroid graph (index/FORMAT.md). The search layer owns these types,
//! so it owns their bytes; `format` supplies the primitives.

use super::graph::{CentroidGraph, GraphParts, MAX_BEAM_FACTOR};
use super::CentroidIndex;
use crate::error::FormatError;
use crate::format::layout::{corrupt, f32s, u32s};
use std::path::Path;

/// Body of `centroids.bin`: u32 P, u32 G, u32 dim, u32 graph flag (0 none,
/// 1 walked from its entry, 2 walked from the group scan); P*dim f32
/// centroids; G*dim f32 group centers; G+1 u32 group starts; with the flag
/// set, the graph (see FORMAT.md).
pub fn encode_centroids(ix: &CentroidIndex) -> Vec<u8> {
    let mut b = Vec::new();
    let flag = match (&ix.graph, ix.graph_from_groups) {
        (None, _) => GRAPH_NONE,
        (Some(_), false) => GRAPH_FROM_ENTRY,
        (Some(_), true) => GRAPH_FROM_GROUPS,
    };
    for v in [ix.posting_count() as u32, ix.group_count() as u32, ix.dim as u32, flag] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for x in ix.centroids.iter().chain(&ix.group_centers) {
        b.extend_from_slice(&x.to_le_bytes());
    }
    for s in &ix.group_starts {
        b.extend_from_slice(&s.to_le_bytes());
    }
    if let Some(g) = &ix.graph {
        for v in [g.m0 as u32, g.m as u32, g.entry, g.beam_factor] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&g.levels);
        b.resize(b.len().next_multiple_of(4), 0);
        for v in g.bottom.iter().chain(&g.upper) {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b
}

/// The preamble's graph flag values.
const GRAPH_NONE: u32 = 0;
const GRAPH_FROM_ENTRY: u32 = 1;
/// Format 5 on.
const GRAPH_FROM_GROUPS: u32 = 2;

/// Largest neighbour list a stored graph may declare.
const MAX_GRAPH_WIDTH: usize = 1024;

fn decode_graph(b: &[u8], p: usize, path: &Path, at: u64) -> Result<CentroidGraph, FormatError> {
    if b.len() < 16 + p {
        return Err(corrupt(path, at, format!("graph section is {} bytes, too short for {p} nodes", b.len())));
    }
    let pre: Vec<u32> = u32s(&b[..16]).collect();
    let (m0, m, entry, factor) = (pre[0] as usize, pre[1] as usize, pre[2], pre[3]);
    if !(1..=MAX_BEAM_FACTOR).contains(&factor) {
        return Err(corrupt(path, at + 12, format!("graph beam factor {factor} is outside 1..={MAX_BEAM_FACTOR}")));
    }
    if m0 == 0 || m == 0 || m0 > MAX_GRAPH_WIDTH || m > MAX_GRAPH_WIDTH {
        return Err(corrupt(path, at, format!("graph widths {m0} and {m} are outside 1..={MAX_GRAPH_WIDTH}")));
    }
    let levels = b[16..16 + p].to_vec();
    let lists_at = (16 + p).next_multiple_of(4);
    let upper_lists: u64 = levels.iter().map(|&l| l as u64).sum();
    let want = lists_at as u64 + 4 * (p as u64 * m0 as u64 + upper_lists * m as u64);
    if b.len() as u64 != want {
        return Err(corrupt(path, at, format!("graph section is {} bytes, its levels say {want}", b.len())));
    }
    let ids: Vec<u32> = u32s(&b[lists_at..]).collect();
    let (bottom, upper) = ids.split_at(p * m0);
    let mut graph =
        CentroidGraph::from_parts(GraphParts { m0, m, entry, levels, bottom: bottom.to_vec(), upper: upper.to_vec() })
            .map_err(|e| corrupt(path, at, format!("graph: {e}")))?;
    graph.beam_factor = factor;
    Ok(graph)
}

pub fn decode_centroids(body: &[u8], path: &Path, dim: usize, postings: u32) -> Result<CentroidIndex, FormatError> {
    let hdr = crate::format::header::HEADER_FIXED_BYTES as u64;
    if body.len() < 16 {
        return Err(corrupt(path, hdr, "centroid body shorter than its 16-byte preamble".into()));
    }
    let pre: Vec<u32> = u32s(&body[..16]).collect();
    let (p, g, d, flag) = (pre[0] as usize, pre[1] as usize, pre[2] as usize, pre[3]);
    if p != postings as usize || d != dim || g == 0 || g > p {
        return Err(corrupt(
            path,
            hdr,
            format!("says {p} centroids, {g} groups, dimension {d}; the manifest disagrees"),
        ));
    }
    if flag > GRAPH_FROM_GROUPS {
        return Err(corrupt(path, hdr + 12, format!("graph flag is {flag}, not 0, 1 or 2")));
    }
    let want = 16 + (p + g) * d * 4 + (g + 1) * 4;
    if body.len() != want && (flag == GRAPH_NONE || body.len() < want) {
        return Err(corrupt(
            path,
            hdr + body.len().min(want) as u64,
            format!("body is {} bytes, expected {want}", body.len()),
        ));
    }
    let cents_end = 16 + p * d * 4;
    let groups_end = cents_end + g * d * 4;
    let starts: Vec<u32> = u32s(&body[groups_end..want]).collect();
    if starts[0] != 0 || starts[g] as usize != p || starts.windows(2).any(|w| w[0] > w[1]) {
        return Err(corrupt(path, hdr + groups_end as u64, "group starts are not a partition of the postings".into()));
    }
    let graph = match flag {
        GRAPH_NONE => None,
        _ => Some(decode_graph(&body[want..], p, path, hdr + want as u64)?),
    };
    let mut ix = CentroidIndex::new(d, f32s(&body[16..cents_end]), f32s(&body[cents_end..groups_end]), starts, graph);
    ix.graph_from_groups = flag == GRAPH_FROM_GROUPS;
    Ok(ix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centroids_round_trip_with_and_without_a_graph_and_reject_a_bad_one() {
        let k = crate::distance::kernels();
        let mut rng = crate::rng::Rng::new(5);
        let dim = 4;
        let cents: Vec<f32> = (0..300 * dim).map(|_| rng.normal()).collect();
        let (groups, _) = CentroidIndex::build(k, &cents, dim, 1);
        let graph = groups.clone().with_graph(k, 2);
        let mut from_groups = graph.clone();
        from_groups.graph_from_groups = true;
        for ix in [&groups, &graph, &from_groups] {
            let b = encode_centroids(ix);
            let back = decode_centroids(&b, Path::new("c"), dim, 300).unwrap();
            assert_eq!(back.centroids, ix.centroids);
            assert_eq!(back.graph, ix.graph);
            assert_eq!(back.graph_from_groups, ix.graph_from_groups);
        }
        let b = encode_centroids(&graph);
        let plain = encode_centroids(&groups).len();
        // A truncated graph, a neighbour id out of range, a bad flag: errors.
        assert!(decode_centroids(&b[..b.len() - 4], Path::new("c"), dim, 300).is_err());
        let mut bad = b.clone();
        let last = bad.len() - 4;
        bad[last..].copy_from_slice(&5000u32.to_le_bytes());
        let e = decode_centroids(&bad, Path::new("c"), dim, 300).unwrap_err().to_string();
        assert!(e.contains("graph"), "{e}");
        let mut flag = b.clone();
        flag[12] = 3;
        assert!(decode_centroids(&flag, Path::new("c"), dim, 300).is_err());
        // The flag set on a body with no graph after the groups.
        let mut short = b[..plain].to_vec();
        short[12] = 1;
        assert!(decode_centroids(&short, Path::new("c"), dim, 300).is_err());
    }
}
