//! Hot paths of a query, each with its scalar twin where one exists:
//! distance kernels, SQ8 and PQ code scoring, the centroid index at growing
//! centroid counts, and the top-k collector. Seeded inputs.
//!
//!   cargo bench -p fathom-benches -- --save-baseline before   (then --baseline before)

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fathom_index::centroids::{CentroidIndex, CentroidScore};
use fathom_index::distance::{available, Kernels};
use fathom_index::quant::{table_distance, Pq};
use fathom_index::rng::Rng;
use fathom_index::topk::TopK;

fn randn(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

fn kernels(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let mut g = c.benchmark_group("kernels");
    for dim in [50usize, 96, 384] {
        let a = randn(&mut rng, dim);
        let b = randn(&mut rng, dim);
        let w: Vec<f32> = (0..dim).map(|_| rng.unit_f32()).collect();
        let codes: Vec<u8> = (0..dim).map(|_| rng.below(256) as u8).collect();
        g.throughput(Throughput::Elements(dim as u64));
        for k in available() {
            g.bench_with_input(BenchmarkId::new(format!("l2_sq/{}", k.name), dim), &dim, |bn, _| {
                bn.iter(|| (k.l2_sq)(black_box(&a), black_box(&b)))
            });
            g.bench_with_input(BenchmarkId::new(format!("sq8_l2/{}", k.name), dim), &dim, |bn, _| {
                bn.iter(|| (k.l2_sq_u8_weighted)(black_box(&a), black_box(&w), black_box(&codes)))
            });
        }
    }
    g.finish();
}

fn pq_scoring(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let mut g = c.benchmark_group("pq");
    for (dim, m) in [(50usize, 25usize), (96, 48)] {
        let sample = randn(&mut rng, 4096 * dim);
        let pq = Pq::fit(fathom_index::distance::kernels(), &sample, dim, m, 1);
        let q = randn(&mut rng, dim);
        let table = pq.table(fathom_index::distance::kernels(), &q, false);
        let codes: Vec<u8> = (0..1024 * m).map(|_| rng.below(256) as u8).collect();
        g.throughput(Throughput::Elements(1024));
        g.bench_with_input(BenchmarkId::new("score_1024_codes", m), &m, |bn, _| {
            bn.iter(|| codes.chunks_exact(m).map(|c| table_distance(black_box(&table), c)).sum::<f32>())
        });
        g.bench_with_input(BenchmarkId::new("build_table", m), &m, |bn, _| {
            bn.iter(|| pq.table(fathom_index::distance::kernels(), black_box(&q), false))
        });
    }
    g.finish();
}

fn centroid_index(c: &mut Criterion) {
    let mut rng = Rng::new(3);
    let dim = 64;
    let mut g = c.benchmark_group("centroid_index");
    g.sample_size(20);
    for p in [10_000usize, 100_000, 1_000_000] {
        let cents = randn(&mut rng, p * dim);
        let kern = fathom_index::distance::kernels();
        let (groups, _) = CentroidIndex::build(kern, &cents, dim, 1);
        let graph = groups.clone().with_graph(kern, 1);
        let q = randn(&mut rng, dim);
        let (mut s, mut out) = (Default::default(), Vec::new());
        for (name, ix) in [("groups", &groups), ("graph", &graph)] {
            g.bench_with_input(BenchmarkId::new(format!("{name}_nearest_32_of"), p), &p, |bn, _| {
                bn.iter(|| ix.nearest(CentroidScore::L2, black_box(&q), 32, 32, &mut s, &mut out))
            });
        }
    }
    g.finish();
}

fn topk(c: &mut Criterion) {
    let mut rng = Rng::new(4);
    let ds: Vec<f32> = (0..4096).map(|_| rng.unit_f32()).collect();
    c.bench_function("topk/push_4096_keep_30", |bn| {
        let mut t = TopK::new(30);
        bn.iter(|| {
            t.reset(30);
            for (i, &d) in ds.iter().enumerate() {
                if d < t.threshold() {
                    t.push(i as u64, i as u32, d);
                }
            }
        })
    });
}

/// XOR + popcount over a block of packed 384-bit codes (48 bytes, as in
/// MiniLM 1-bit collections), per kernel set, in bytes of codes per second;
/// beside it a plain sum over the same bytes from RAM (a block far larger
/// than the caches), the memory-bandwidth ceiling for any scan.
fn hamming_scan(c: &mut Criterion) {
    let mut rng = Rng::new(9);
    let words = 6; // 384 bits
    for (tag, n) in [("l2-resident", 10_000usize), ("from-ram", 1_000_000)] {
        let codes: Vec<u64> = (0..n * words).map(|_| rng.next_u64()).collect();
        let q: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
        let mut g = c.benchmark_group(format!("hamming_scan_{tag}"));
        g.throughput(Throughput::Bytes((n * words * 8) as u64));
        g.sample_size(20);
        for (name, f) in fathom_index::distance::xor_popcount_variants() {
            g.bench_function(name, |bn| {
                bn.iter(|| {
                    let mut best = u32::MAX;
                    for code in codes.chunks_exact(words) {
                        best = best.min(f(black_box(&q), code));
                    }
                    best
                })
            });
        }
        // The block kernels the searcher uses: one call per posting of 768 codes.
        let bytes: Vec<u8> = codes.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = vec![0u32; 768];
        for (name, f) in fathom_index::distance::hamming_block_variants() {
            g.bench_function(format!("block_{name}"), |bn| {
                bn.iter(|| {
                    let mut best = u32::MAX;
                    for block in bytes.chunks(768 * words * 8) {
                        let n = block.len() / (words * 8);
                        f(black_box(&q), block, &mut out[..n]);
                        best = best.min(out[..n].iter().copied().min().unwrap_or(u32::MAX));
                    }
                    best
                })
            });
        }
        g.bench_function("memory_sum", |bn| bn.iter(|| codes.iter().fold(0u64, |a, &w| a.wrapping_add(w))));
        g.finish();
    }
}

/// Resident row codes (384-d, 2 bits: a 104-byte record) scored from cache
/// and from a set larger than the caches, with each plane-sums kernel
/// (`none`: the unrolled POPCNT loops).
fn row_codes(c: &mut Criterion) {
    use fathom_index::distance::rows::Rows;
    use fathom_index::quant::rowcode::{encode_row, record_bytes, RowQuery};
    use fathom_index::Metric;
    let mut rng = Rng::new(10);
    let dim = 384;
    let sample = randn(&mut rng, 2000 * dim);
    let p = fathom_codec::CodecParams::fit(&sample, dim, 2, 1).expect("fit");
    let rb = record_bytes(&p, Metric::L2);
    let mut one = vec![0u8; rb];
    let recs: Vec<u8> = sample
        .chunks_exact(dim)
        .flat_map(|x| {
            encode_row(&p, Metric::L2, x, &mut one);
            one.clone()
        })
        .collect();
    let base = *fathom_index::distance::kernels();
    let mut variants: Vec<(&str, fathom_index::distance::Kernels)> =
        vec![("none", Kernels { plane_sums: None, ..base })];
    for (name, f) in fathom_index::distance::plane_sums_variants() {
        variants.push((name, Kernels { plane_sums: Some(f), ..base }));
    }
    let mut g = c.benchmark_group("row_codes_384x2");
    g.throughput(Throughput::Elements(2000));
    for (name, k) in &variants {
        let rq = RowQuery::new(k, &p, Rows::F32(&p.rotation), &sample[..dim], Metric::L2);
        g.bench_function(*name, |bn| {
            bn.iter(|| recs.chunks_exact(rb).map(|r| rq.distance(black_box(r))).fold(f32::MAX, f32::min))
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, pq_scoring, centroid_index, topk, hamming_scan, row_codes);
criterion_main!(benches);
