//! GPU tests: streamtopk against the CPU reference. Run on a CUDA machine
//! with `cargo test --release -- --include-ignored`.

mod common;

use std::sync::Arc;

use common::{logits, setup, Dist, Rng, ALL_DISTS};
use cust::stream::Stream;
use streamtopk::kernels::element::Element;
use streamtopk::{reference, Kernels, Logit, TopK, TopKConfig};

/// Run one case of type `T`; panics with the case on mismatch.
fn check<T: Logit>(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    values: &[f32],
    batch: usize,
    vocab: usize,
    k: usize,
    what: &str,
) {
    let host: Vec<T> = values.iter().map(|&v| T::from_f32(v)).collect();
    let mut topk = TopK::new(
        kernels,
        TopKConfig::new(batch, vocab, k).with_dtype(T::Kernel::DTYPE),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (v, i) = topk
        .run_host(stream, &host, batch)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (rv, ri) = reference::topk(&host, batch, vocab, k);
    if let Some(j) = reference::first_mismatch(&v, &i, &rv, &ri) {
        let (row, col) = (j / k, j % k);
        panic!(
            "{what} (plan {:?}): mismatch at row {row}, rank {col}: got ({}, {}), expected ({}, {})",
            topk.plan(),
            v[j],
            i[j],
            rv[j],
            ri[j]
        );
    }
}

fn check_all_dtypes(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    dist: Dist,
    batch: usize,
    vocab: usize,
    k: usize,
    seed: u64,
) {
    let values = logits(dist, batch, vocab, k, seed);
    let what = format!("{dist:?} batch={batch} vocab={vocab} k={k} seed={seed}");
    check::<half::bf16>(
        kernels,
        stream,
        &values,
        batch,
        vocab,
        k,
        &format!("bf16 {what}"),
    );
    check::<half::f16>(
        kernels,
        stream,
        &values,
        batch,
        vocab,
        k,
        &format!("f16 {what}"),
    );
    check::<f32>(
        kernels,
        stream,
        &values,
        batch,
        vocab,
        k,
        &format!("f32 {what}"),
    );
}

/// The seed benchmark's rows plus the foundation issue's two large ones.
const SEED_MATRIX: [(usize, usize, usize); 9] = [
    (1, 50304, 50),
    (1, 50304, 100),
    (1, 50304, 200),
    (4, 50304, 50),
    (16, 50304, 50),
    (32, 50304, 50),
    (32, 50304, 200),
    (64, 151936, 1024),
    (256, 262144, 50),
];

#[test]
#[ignore = "needs a CUDA GPU"]
fn seed_matrix_randn_all_dtypes() {
    let (kernels, stream) = setup();
    for (batch, vocab, k) in SEED_MATRIX {
        check_all_dtypes(&kernels, &stream, Dist::Randn, batch, vocab, k, 0);
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn every_distribution_on_nanochat_shapes() {
    let (kernels, stream) = setup();
    for dist in ALL_DISTS {
        for (batch, vocab, k) in [
            (1, 50304, 50),
            (3, 50304, 200),
            (2, 151936, 1024),
            (5, 4099, 7),
        ] {
            check_all_dtypes(&kernels, &stream, dist, batch, vocab, k, 7);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn tiny_and_edge_shapes() {
    let (kernels, stream) = setup();
    for (batch, vocab, k) in [
        (1, 1, 1),
        (2, 2, 2),
        (3, 7, 1),
        (1, 31, 31),
        (2, 65, 64),
        (1, 1000, 1000),
        (1, 16385, 16),
        (1, 300000, 1),
    ] {
        for dist in ALL_DISTS {
            check_all_dtypes(&kernels, &stream, dist, batch, vocab, k, 3);
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn random_shapes() {
    let (kernels, stream) = setup();
    let cases = 320;
    let mut rng = Rng::new(2026);
    for case in 0..cases {
        let mut batch = rng.range(1, 300);
        let vocab = match case % 4 {
            0 => rng.range(1, 300),
            1 => rng.range(1, 5000),
            _ => rng.range(1, 300_000),
        };
        // Keep each case under ~4M elements so the CPU reference stays quick.
        batch = batch.min((4_000_000 / vocab).max(1));
        let k = rng.range(1, vocab.min(1024));
        let dist = ALL_DISTS[case % ALL_DISTS.len()];
        let seed = rng.next();
        let values = logits(dist, batch, vocab, k, seed);
        let what = format!("case {case}: {dist:?} batch={batch} vocab={vocab} k={k} seed={seed}");
        match case % 3 {
            0 => check::<half::bf16>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                k,
                &format!("bf16 {what}"),
            ),
            1 => check::<half::f16>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                k,
                &format!("f16 {what}"),
            ),
            _ => check::<f32>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                k,
                &format!("f32 {what}"),
            ),
        }
    }
    eprintln!("random_shapes: {cases} cases matched the reference");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bad_call_shapes_are_refused_and_leave_outputs_alone() {
    let (kernels, stream) = setup();
    let mut topk = TopK::new(&kernels, TopKConfig::new(2, 1000, 10)).unwrap();
    let host = vec![half::bf16::from_f32(1.0); 1000];
    assert!(matches!(
        topk.run_host(&stream, &host, 2),
        Err(streamtopk::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        topk.run_host(&stream, &host, 0),
        Err(streamtopk::Error::BatchZero)
    ));
    assert!(matches!(
        topk.run_host(&stream, &vec![half::bf16::ZERO; 3000], 3),
        Err(streamtopk::Error::BatchAboveMax { .. })
    ));
    assert!(matches!(
        topk.run_host(&stream, &vec![0f32; 1000], 1),
        Err(streamtopk::Error::DTypeMismatch { .. })
    ));
    // The operator still works after refusals.
    let values = logits(Dist::Randn, 1, 1000, 10, 1);
    let host: Vec<half::bf16> = values.iter().map(|&v| half::bf16::from_f32(v)).collect();
    let (v, i) = topk.run_host(&stream, &host, 1).unwrap();
    let (rv, ri) = reference::topk(&host, 1, 1000, 10);
    assert_eq!(reference::first_mismatch(&v, &i, &rv, &ri), None);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn repeated_split_and_graph_replayed_calls_agree() {
    use cust::memory::{CopyDestination, DeviceBuffer};
    let (kernels, stream) = setup();
    // Cluster, chunked and every filter plan (merge in the last block, in
    // a launch of its own, after one pass).
    for (batch, vocab, k) in [
        (4, 50304, 50),
        (1, 50304, 200),
        (2, 151936, 1024),
        (3, 4099, 7),
        (2, 1000, 1000),
        (67, 50304, 50),
        (33, 151936, 300),
        (65, 262147, 50),
    ] {
        let values = logits(Dist::Randn, batch, vocab, k, 11);
        let host: Vec<half::bf16> = values.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let (rv, ri) = reference::topk(&host, batch, vocab, k);
        let mut topk = TopK::new(&kernels, TopKConfig::new(batch, vocab, k)).unwrap();
        let plan = *topk.plan();
        let input = DeviceBuffer::from_slice(&host).unwrap();
        let mut v = DeviceBuffer::<f32>::zeroed(batch * k).unwrap();
        let mut i = DeviceBuffer::<u32>::zeroed(batch * k).unwrap();
        let expect = |v: &DeviceBuffer<f32>, i: &DeviceBuffer<u32>, how: &str| {
            stream.synchronize().unwrap();
            let (mut hv, mut hi) = (vec![0f32; batch * k], vec![0u32; batch * k]);
            v.copy_to(&mut hv[..]).unwrap();
            i.copy_to(&mut hi[..]).unwrap();
            assert_eq!(
                reference::first_mismatch(&hv, &hi, &rv, &ri),
                None,
                "{how}: batch={batch} vocab={vocab} k={k} plan {plan:?}"
            );
        };
        for call in 0..3 {
            topk.run(&stream, &input, batch, &mut v, &mut i).unwrap();
            expect(&v, &i, &format!("plain call {call}"));
        }
        let marks =
            [(); 3].map(|_| cust::event::Event::new(cust::event::EventFlags::DEFAULT).unwrap());
        topk.run_marked(
            &stream,
            &input,
            batch,
            &mut v,
            &mut i,
            [&marks[0], &marks[1], &marks[2]],
        )
        .unwrap();
        expect(&v, &i, "stages in two launches");

        let mut gv = DeviceBuffer::<f32>::zeroed(batch * k).unwrap();
        let mut gi = DeviceBuffer::<u32>::zeroed(batch * k).unwrap();
        let graph =
            streamtopk::Graph::capture(&stream, |s| topk.run(s, &input, batch, &mut gv, &mut gi))
                .unwrap();
        stream.synchronize().unwrap();
        let (mut hv, mut hi) = (vec![1f32; batch * k], vec![1u32; batch * k]);
        gv.copy_to(&mut hv[..]).unwrap();
        gi.copy_to(&mut hi[..]).unwrap();
        assert!(
            hv.iter().all(|&x| x == 0.0) && hi.iter().all(|&x| x == 0),
            "capture must not run the kernel"
        );
        for _ in 0..5 {
            graph.launch(&stream).unwrap();
        }
        expect(&gv, &gi, "graph replay");
        // Plain calls still work after the replays.
        topk.run(&stream, &input, batch, &mut v, &mut i).unwrap();
        expect(&v, &i, "plain call after replay");
    }
}

/// The cluster-per-row body, forced through `$STREAMTOPK_CLUSTER` (blocks,
/// threads), on every distribution and dtype over a spread of cluster
/// shapes (two blocks to 16, partial vectors, k up to 2048; filtered
/// candidates that fit a rank sort, that need a select first, and (ties)
/// that overflow the room into the exact select), against the reference.
/// f32 blocks above 512 threads do not fit its registers: those dtypes run
/// the chunked body there.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cluster_body_on_every_distribution() {
    let (kernels, stream) = setup();
    for (cluster, batch, vocab, k) in [
        ("16,512", 1, 50304, 50),
        ("16,256", 2, 50304, 200),
        ("8,512", 3, 50304, 200),
        ("4,256", 2, 4099, 7),
        ("2,256", 2, 1000, 1000),
        ("2,640", 1, 50000, 1),
        ("16,640", 1, 262144, 1024),
        ("16,512", 2, 151936, 2048),
    ] {
        let _forced = EnvVar::set(streamtopk::plan::CLUSTER_ENV, cluster);
        let config = TopKConfig::new(batch, vocab, k);
        let plan = *TopK::new(&kernels, config).unwrap().plan();
        assert!(
            plan.cluster,
            "{cluster}: bf16 {batch}x{vocab} k={k} planned {plan:?}"
        );
        for dist in ALL_DISTS {
            check_all_dtypes(&kernels, &stream, dist, batch, vocab, k, 29);
        }
    }
}

/// An environment variable set until dropped, also when the test panics
/// (so the tests after it plan as usual).
struct EnvVar(&'static str);

impl EnvVar {
    fn set(name: &'static str, value: &str) -> EnvVar {
        std::env::set_var(name, value);
        EnvVar(name)
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        std::env::remove_var(self.0);
    }
}

/// The filter body (the default plan of longer batches) on every
/// distribution and dtype: two launches (k above 64) and one (each block
/// appends to a pool region of its own), shares of one to many blocks, partial vectors, bounds from the rank
/// count and from the radix fallback, bounds from a `BOUND` launch and
/// sampled ones, pools that overflow (ties) into the last block's exact
/// select, and (`Dist::Spikes` at 33 x 393,216 k=2000: the sample sees
/// only the 1,536 spikes) sampled bounds above the k-th key, which leave
/// fewer than k candidates.
#[test]
#[ignore = "needs a CUDA GPU"]
fn filter_body_on_every_distribution() {
    let (kernels, stream) = setup();
    // (batch, vocab, k, sampled bound)
    for (batch, vocab, k, sampled) in [
        (67, 50304, 100, false),
        (67, 50304, 50, false),
        (67, 16411, 7, false),
        (20, 65536, 300, true),
        (24, 151936, 1024, true),
        (67, 20001, 1, false),
        (130, 131072, 50, false),
        (300, 16411, 100, true),
        (33, 393216, 2000, true),
    ] {
        let config = TopKConfig::new(batch, vocab, k);
        let plan = *TopK::new(&kernels, config).unwrap().plan();
        assert!(plan.filter, "bf16 {batch}x{vocab} k={k} planned {plan:?}");
        assert_eq!(
            plan.sample_rank > 0,
            sampled,
            "bf16 {batch}x{vocab} k={k} planned {plan:?}"
        );
        for dist in ALL_DISTS {
            check_all_dtypes(&kernels, &stream, dist, batch, vocab, k, 31);
        }
    }
}

/// Filter plans whose appending blocks take several chunks each, forced
/// through `$STREAMTOPK_FILTER_ROUNDS`: two passes (`FILTER` or
/// `FILTER_MERGE`) with a bound from a `BOUND` launch and the merge in the
/// last block, and with a sampled bound and a merge launch; one pass
/// (`LOCAL`, each block's first chunk bounding the rest); blocks whose
/// last chunks run past the row (fewer chunks than rounds), partial
/// vectors.
#[test]
#[ignore = "needs a CUDA GPU"]
fn filter_rounds_on_every_distribution() {
    let (kernels, stream) = setup();
    // (Shapes that would otherwise run the cluster body.)
    let _no_cluster = EnvVar::set(streamtopk::plan::CLUSTER_ENV, "off");
    for (rounds, batch, vocab, k, single) in [
        (3, 67, 50304, 100, false),
        (2, 67, 50311, 200, false),
        (3, 24, 151936, 1024, false),
        (4, 9, 262147, 300, false),
        (2, 67, 50311, 64, true),
        (3, 70, 65541, 50, true),
        (4, 9, 262147, 50, true),
    ] {
        let _forced = EnvVar::set(streamtopk::plan::FILTER_ROUNDS_ENV, &rounds.to_string());
        let config = TopKConfig::new(batch, vocab, k);
        let plan = *TopK::new(&kernels, config).unwrap().plan();
        assert!(
            plan.filter && plan.single_pass == single && plan.filter_rounds == rounds,
            "bf16 {batch}x{vocab} k={k} planned {plan:?}"
        );
        for dist in ALL_DISTS {
            check_all_dtypes(&kernels, &stream, dist, batch, vocab, k, 37);
        }
    }
}
