//! CPU tests (CI): key encodings, the reference, planning, validation, the
//! PTX (entry points present, assembled by ptxas with no spills), file I/O.

use std::cmp::Ordering;
use std::process::Command;

use streamtopk::kernels::element::{Bf16, Element, F16, F32, NAN_KEY};
use streamtopk::kernels::params::{Layout, FILTER_MAX_REGISTERS};
use streamtopk::plan::{
    auto_target_pool, filter_rounds, local_rounds, Plan, DEFAULT_TARGET_POOL, MAX_CHUNK_BYTES,
    MAX_K, SM90_SMEM_LIMIT,
};
use streamtopk::{reference, DType, Error, TopKConfig, KERNEL_NAMES, PTX};

/// torch's order of values: NaN above everything, then IEEE total order.
fn value_order(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

/// Keys of `patterns` must order exactly as their values, NaN must map to
/// the NaN key and every other key must decode to its value.
fn check_keys<E: Element>(patterns: impl Iterator<Item = u32>, to_f32: impl Fn(u32) -> f32) {
    let mut items: Vec<(f32, u32)> = patterns.map(|b| (to_f32(b), b)).collect();
    items.sort_by(|a, b| value_order(a.0, b.0));
    for w in items.windows(2) {
        let (ka, kb) = (E::key(w[0].1), E::key(w[1].1));
        match value_order(w[0].0, w[1].0) {
            Ordering::Less => assert!(
                ka < kb,
                "{:#x} < {:#x} but keys {ka:#x} >= {kb:#x}",
                w[0].1,
                w[1].1
            ),
            _ => assert_eq!(ka, kb, "equal values {:#x} {:#x}", w[0].1, w[1].1),
        }
    }
    for &(v, b) in &items {
        if v.is_nan() {
            assert!(E::to_f32(b).is_nan(), "to_f32 of {b:#x}");
            assert_eq!(E::key(b), NAN_KEY);
            assert!(E::key_to_f32(E::key(b)).is_nan());
        } else {
            assert_eq!(E::to_f32(b).to_bits(), v.to_bits(), "to_f32 of {b:#x}");
            assert_eq!(E::bits_of_key(E::key(b)), b, "key round trip of {b:#x}");
            assert_eq!(E::key_to_f32(E::key(b)).to_bits(), v.to_bits());
        }
    }
}

#[test]
fn bf16_keys_order_every_pattern() {
    check_keys::<Bf16>(0..=0xffff, |b| half::bf16::from_bits(b as u16).to_f32());
}

#[test]
fn f16_keys_order_every_pattern() {
    check_keys::<F16>(0..=0xffff, |b| half::f16::from_bits(b as u16).to_f32());
}

#[test]
fn f32_keys_order_specials_and_random_patterns() {
    let specials = [
        0u32,
        0x8000_0000,
        1,
        0x8000_0001,
        0x7f7f_ffff,
        0xff7f_ffff,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0xffc0_0001,
        0x3f80_0000,
    ];
    let mut x = 0x1234_5678_9abc_def0u64;
    let random = (0..200_000).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u32
    });
    check_keys::<F32>(specials.into_iter().chain(random), f32::from_bits);
}

#[test]
fn reference_matches_a_full_stable_sort() {
    let mut x = 7u64;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as u32
    };
    for case in 0..200 {
        let batch = 1 + (next() % 4) as usize;
        let vocab = 1 + (next() % 300) as usize;
        let k = 1 + (next() as usize % vocab);
        let values: Vec<f32> = (0..batch * vocab)
            .map(|_| match next() % 10 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => -0.0,
                4 => 0.0,
                _ => (next() % 7) as f32 - 3.0,
            })
            .collect();
        let (rv, ri) = reference::topk(&values, batch, vocab, k);
        for r in 0..batch {
            let row = &values[r * vocab..(r + 1) * vocab];
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|&a, &b| value_order(row[b], row[a])); // stable: ties keep index order
            for j in 0..k {
                let (v, i) = (rv[r * k + j], ri[r * k + j] as usize);
                assert_eq!(i, order[j], "case {case} row {r} rank {j}");
                assert!(v.to_bits() == row[i].to_bits() || (v.is_nan() && row[i].is_nan()));
            }
        }
        assert_eq!(reference::first_mismatch(&rv, &ri, &rv, &ri), None);
    }
}

#[test]
fn first_mismatch_finds_value_and_index_differences() {
    let (v, i) = (vec![3.0, 2.0, f32::NAN], vec![0, 1, 2]);
    assert_eq!(reference::first_mismatch(&v, &i, &v, &i), None);
    assert_eq!(
        reference::first_mismatch(&[3.0, 2.5, f32::NAN], &i, &v, &i),
        Some(1)
    );
    assert_eq!(reference::first_mismatch(&v, &[0, 1, 3], &v, &i), Some(2));
    assert_eq!(reference::first_mismatch(&v[..2], &i[..2], &v, &i), Some(2));
}

#[test]
fn plan_follows_the_seed_heuristic_and_fits_the_device() {
    let p = Plan::new(50304, 50, 2, DEFAULT_TARGET_POOL as u32, SM90_SMEM_LIMIT).unwrap();
    assert_eq!((p.chunks, p.pool()), (10, 500));
    // The seed would take 2 chunks of 25,152 (at most 16,384 f32 elements fit).
    let p = Plan::new(50304, 200, 2, 500, SM90_SMEM_LIMIT).unwrap();
    assert_eq!((p.chunks, p.chunk_len), (2, 25152));
    let p = Plan::new(50304, 200, 4, 500, SM90_SMEM_LIMIT).unwrap();
    assert_eq!((p.chunks, p.chunk_len), (4, 12608));
    // One chunk per row: no stage 2.
    let p = Plan::new(4096, 50, 4, 50, SM90_SMEM_LIMIT).unwrap();
    assert_eq!((p.chunks, p.pool()), (1, 0));
    for vocab in [
        1u32,
        7,
        63,
        64,
        65,
        1000,
        50304,
        128256,
        151936,
        262144,
        300_000,
        1 << 20,
    ] {
        for k in [1u32, 2, 50, 200, 1024, 2048, 4096] {
            if k > vocab {
                continue;
            }
            for (target, size) in [1u32, 500, 5000].into_iter().flat_map(|t| [(t, 2), (t, 4)]) {
                let Some(p) = Plan::new(vocab, k, size, target, SM90_SMEM_LIMIT) else {
                    assert!(
                        k > 2048 || vocab > 300_000,
                        "no plan for vocab {vocab}, k {k}"
                    );
                    continue;
                };
                assert!(
                    p.chunks >= 1
                        && (p.chunks - 1) * p.chunk_len < vocab
                        && p.chunks * p.chunk_len >= vocab
                );
                assert!(p.chunk_len % 64 == 0 || p.chunk_len == vocab);
                // Longer chunks only where the preferred ones cannot fit.
                assert!(
                    p.chunk_len * size <= MAX_CHUNK_BYTES || k >= 1024,
                    "vocab {vocab} k {k} size {size}: chunk of {}",
                    p.chunk_len
                );
                assert!(
                    p.chunks == 1 || p.chunk_len >= k,
                    "a full chunk holds k elements"
                );
                assert_eq!(p.smem(), Layout::new(p.chunk_len, size, k, p.chunks).bytes);
                assert!(p.smem() <= SM90_SMEM_LIMIT);
                assert!(p.threads % 32 == 0 && (256..=1024).contains(&p.threads));
            }
        }
    }
}

#[test]
fn shapes_beyond_shared_memory_are_refused() {
    // A million-wide row with k = 4096 needs a pool that fits no block.
    assert_eq!(Plan::new(1 << 20, 4096, 4, 500, SM90_SMEM_LIMIT), None);
    let c = TopKConfig::new(1, 1 << 20, 4096);
    assert!(matches!(c.plan(), Err(Error::ShapeTooLarge { .. })));
}

#[test]
fn target_pool_is_overridable() {
    let mut c = TopKConfig::new(1, 50304, 50);
    c.target_pool = Some(1000);
    assert_eq!(c.plan().unwrap().chunks, 20);
    c.target_pool = Some(0);
    assert!(matches!(c.plan(), Err(Error::TargetPoolZero)));
}

#[test]
fn bad_configs_get_typed_errors() {
    let plan = |b, v, k| TopKConfig::new(b, v, k).plan();
    assert!(matches!(plan(1, 100, 0), Err(Error::KZero)));
    assert!(matches!(
        plan(1, 100, 101),
        Err(Error::KAboveVocab { k: 101, vocab: 100 })
    ));
    assert!(matches!(plan(0, 100, 1), Err(Error::BatchZero)));
    assert!(matches!(plan(1, 0, 1), Err(Error::VocabZero)));
    assert!(matches!(
        plan(1, 100_000, MAX_K + 1),
        Err(Error::KAboveLimit { .. })
    ));
    assert!(plan(1, 100, 100).is_ok());
    let msg = plan(1, 100, 101).unwrap_err().to_string();
    assert!(msg.contains("101") && msg.contains("100"), "{msg}");
}

#[test]
fn ptx_has_every_kernel_entry_point() {
    for name in KERNEL_NAMES {
        assert!(
            PTX.contains(&format!(".visible .entry {name}(")),
            "{name} missing from the PTX"
        );
    }
    assert!(PTX.contains(".target sm_90") || std::env::var("STREAMTOPK_ARCH").is_ok());
}

/// ptxas from $PTXAS, the PyPI package nvidia-cuda-nvcc-cu12, or PATH.
fn ptxas() -> String {
    if let Ok(p) = std::env::var("PTXAS") {
        return p;
    }
    let py = Command::new("python3")
        .args(["-c", "import nvidia.cuda_nvcc, os; print(os.path.join(list(nvidia.cuda_nvcc.__path__)[0], 'bin', 'ptxas'))"])
        .output();
    if let Ok(out) = py {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && std::path::Path::new(&path).exists() {
            return path;
        }
    }
    "ptxas".to_string()
}

#[test]
fn ptx_assembles_for_sm90_without_spills() {
    let dir = std::env::temp_dir().join(format!("streamtopk-ptxas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ptx = dir.join("streamtopk.ptx");
    std::fs::write(&ptx, PTX).unwrap();
    let out = Command::new(ptxas())
        .args(["-arch=sm_90", "-v", "-o"])
        .arg(dir.join("streamtopk.cubin"))
        .arg(&ptx)
        .output()
        .expect("ptxas not found: pip install nvidia-cuda-nvcc-cu12, or set PTXAS");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ptxas failed:\n{log}");
    for name in KERNEL_NAMES {
        assert!(
            log.contains(&format!("Compiling entry function '{name}'")),
            "{name} not assembled"
        );
    }
    // The filter kernels keep to the register cap the build writes in.
    let mut kernel = "";
    let mut capped = 0;
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            kernel = rest.split('\'').next().unwrap_or("");
        }
        if let Some(rest) = line.split("Used ").nth(1) {
            let used: u32 = rest.split(' ').next().unwrap().parse().unwrap();
            if kernel.starts_with("topk_filter_") {
                assert!(used <= FILTER_MAX_REGISTERS, "{kernel}: {used} registers");
                capped += 1;
            }
        }
    }
    assert_eq!(capped, 3, "register counts of the filter kernels not found");
    for line in log.lines().filter(|l| l.contains("spill")) {
        assert!(
            line.contains(" 0 bytes spill stores, 0 bytes spill loads"),
            "spills: {line}"
        );
        assert!(
            line.trim_start().starts_with("0 bytes stack frame"),
            "local memory: {line}"
        );
    }
    println!("{log}");
}

#[test]
fn safetensors_round_trip_and_errors() {
    use safetensors::tensor::{Dtype, TensorView};
    use streamtopk::io::{self, Logits};
    let dir = std::env::temp_dir().join(format!("streamtopk-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vals: Vec<half::bf16> = io::randn(6, 1)
        .into_iter()
        .map(half::bf16::from_f32)
        .collect();
    let bytes: Vec<u8> = vals
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    let file = dir.join("logits.safetensors");
    let t = TensorView::new(Dtype::BF16, vec![2, 3], &bytes).unwrap();
    std::fs::write(
        &file,
        safetensors::serialize([("logits", t)], &None).unwrap(),
    )
    .unwrap();
    match io::read_logits(&file).unwrap() {
        Logits::BF16 { data, batch, vocab } => assert_eq!((data, batch, vocab), (vals, 2, 3)),
        _ => panic!("wrong dtype"),
    }
    let bad = dir.join("bad.safetensors");
    let t = TensorView::new(Dtype::BF16, vec![6], &bytes).unwrap();
    std::fs::write(
        &bad,
        safetensors::serialize([("logits", t)], &None).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        io::read_logits(&bad),
        Err(io::IoError::BadShape { .. })
    ));
    let t = TensorView::new(Dtype::BF16, vec![2, 3], &bytes).unwrap();
    std::fs::write(&bad, safetensors::serialize([("other", t)], &None).unwrap()).unwrap();
    assert!(matches!(
        io::read_logits(&bad),
        Err(io::IoError::MissingTensor { .. })
    ));
    std::fs::write(&bad, b"not a safetensors file").unwrap();
    assert!(matches!(
        io::read_logits(&bad),
        Err(io::IoError::Format { .. })
    ));
    assert!(matches!(
        io::read_logits(&dir.join("missing")),
        Err(io::IoError::Read { .. })
    ));
    assert!(matches!(
        io::parse_dtype("int8"),
        Err(io::IoError::UnsupportedDtype(_))
    ));

    let out = dir.join("out.safetensors");
    io::write_topk(&out, &[2.0, 1.0], &[5, 3], 1, 2).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("indices").unwrap().dtype(), Dtype::I64);
    assert_eq!(st.tensor("values").unwrap().shape(), &[1, 2]);
    assert_eq!(io::thousands(50304), "50,304");
    assert_eq!(io::thousands(262144), "262,144");
    assert_eq!(io::thousands(7), "7");
}

#[test]
fn loading_without_a_gpu_is_a_clean_error() {
    // On a machine with a GPU this loads; without one it must say so (never panic).
    if let Err(e) = streamtopk::load() {
        assert!(matches!(e, Error::NoDevice(_)), "unexpected error: {e}");
    }
}

#[test]
fn default_plan_follows_the_sweep() {
    // The chunked plan (the sampler's, and where the filter's does not fit).
    let chunks = |v: u32, k: u32| {
        let pool = auto_target_pool(v as usize, k as usize) as u32;
        Plan::new(v, k, 2, pool, SM90_SMEM_LIMIT).unwrap().chunks
    };
    assert_eq!(chunks(50304, 50), 5);
    assert_eq!(chunks(50304, 200), 5);
    assert_eq!(chunks(151936, 1024), 5);
    assert_eq!(chunks(262144, 50), 22);
    // A cluster per row for rows of 16,384 or more where the grid is one
    // wave (132 x 1,024 threads); for k up to 256 the first of 8 x 256, 8
    // x 512, 16 x 256, 16 x 512 (blocks x threads) the row fits (from 8 x
    // 512 for k above 128 in batches up to 8), else 512 threads in 16
    // blocks (8 where that leaves each thread one vector).
    let plan = |b, v, k| TopKConfig::new(b, v, k).plan().unwrap();
    for (b, v, k, blocks, threads) in [
        (1, 50304, 50, 8, 256),
        (8, 50304, 100, 8, 256),
        (16, 50304, 200, 8, 256),
        (9, 50304, 129, 8, 256),
        (8, 50304, 129, 8, 512),
        (1, 50304, 128, 8, 256),
        (1, 65536, 256, 8, 512),
        (33, 50304, 50, 8, 256),
        (64, 65536, 50, 8, 256),
        (66, 50304, 100, 8, 256),
        (33, 128256, 50, 8, 512),
        (32, 128256, 50, 8, 512),
        (1, 32000, 50, 8, 256),
        (1, 128256, 50, 8, 512),
        (1, 262144, 50, 16, 512),
        (16, 151936, 1024, 16, 512),
        (1, 32000, 1024, 8, 512),
        (1, 262144, 2048, 16, 512),
    ] {
        let p = plan(b, v, k);
        assert!(
            p.cluster && p.chunks == blocks && p.threads == threads,
            "{p:?}"
        );
    }
    for (b, v, k) in [
        (67, 50304, 50),
        (34, 128256, 50),
        (17, 262144, 50),
        (1, 16000, 50),
        (2, 1000, 10),
    ] {
        assert!(!plan(b, v, k).cluster, "{b}x{v} k={k}");
    }
    // Elsewhere the filter body for rows of 16,384 or more: blocks of 384
    // threads holding up to 15,296 16-bit elements (12,224 where the longer
    // blocks leave each a share of the bound above 72 keys), where each
    // block's share of the bound is at most 96 keys; else the chunked body.
    // One pass where k <= 64 and chunks * k <= 1024; a merge launch for
    // one pass or k > 256. A sampled bound's FILTER blocks append up to
    // three chunks each where that keeps the slots (132 x 3) as busy; a
    // single pass's LOCAL blocks up to three, spread evenly, where one a
    // block would take more than one wave of the slots.
    for (b, v, k, blocks, single, merge_launch, rounds) in [
        (67, 50304, 50, 4, true, true, 1),
        (128, 50304, 50, 4, true, true, 2),
        (64, 128256, 64, 9, true, true, 3),
        (64, 128256, 65, 9, false, false, 1),
        (130, 131072, 50, 9, true, true, 3),
        (67, 50304, 200, 4, false, false, 1),
        (64, 151936, 1024, 10, false, true, 1),
        (256, 262144, 50, 18, true, true, 3),
        (64, 262144, 100, 18, false, false, 3),
        (64, 262144, 1024, 18, false, true, 3),
        (48, 262144, 1024, 18, false, true, 1),
        (256, 262144, 300, 18, false, true, 3),
        (64, 128256, 257, 9, false, true, 1),
    ] {
        let p = plan(b, v, k);
        assert!(
            p.filter
                && p.chunks == blocks
                && p.threads == 384
                && p.single_pass == single
                && p.merge_launch == merge_launch
                && p.filter_rounds == rounds,
            "{p:?}"
        );
    }
    // Rounds: the slots' critical path in chunks against the average.
    assert_eq!(filter_rounds(18, 64, 396), 3); // 3 against 2.91
    assert_eq!(filter_rounds(18, 56, 396), 1); // 3 against 2.55
    assert_eq!(filter_rounds(18, 128, 396), 3); // 6 against 5.82
    assert_eq!(filter_rounds(18, 80, 396), 1); // 4 (two a block) against 3.64
    assert_eq!(filter_rounds(4, 99, 396), 1); // 2 (two a block) against 1.0
    assert_eq!(filter_rounds(2, 396, 396), 2); // 2 against 2.0
    assert_eq!(filter_rounds(13, 64, 396), 1);
    assert_eq!(filter_rounds(1, 1000, 396), 1);
    // A single pass: one a block within a wave, else up to three, evenly.
    assert_eq!(local_rounds(18, 22, 396), 1); // 396 blocks: one wave
    assert_eq!(local_rounds(18, 23, 396), 3);
    assert_eq!(local_rounds(4, 128, 396), 2); // two blocks of two, not 3 + 1
    assert_eq!(local_rounds(5, 100, 396), 3); // 3 + 2
    assert_eq!(local_rounds(9, 64, 396), 3);
    assert_eq!(local_rounds(1, 1000, 396), 1);
    assert!(!plan(64, 50304, 1024).filter && !plan(1, 16000, 50).filter);
    // A one-pass plan's pool: a region a block, room for its count and
    // twice the top k of each of its chunks; the merge's candidates hold
    // twice chunks * k.
    for (b, v, k, room) in [
        (256, 262144, 50, 512u32),
        (130, 131072, 50, 512),
        (128, 50304, 50, 256),
        (67, 50304, 50, 128),
    ] {
        let p = plan(b, v, k);
        let layout = p.filter_layout();
        assert!(p.single_pass && layout.room == room, "{layout:?}");
        let regions = p.chunks.div_ceil(p.filter_rounds);
        assert_eq!(p.pool(), regions * room, "{layout:?}");
        assert!(layout.capacity >= 2 * p.chunks * k as u32, "{layout:?}");
    }
    // f32 rows of 262,144 do not fit 16 blocks' registers.
    let f32_plan = TopKConfig::new(1, 262144, 50)
        .with_dtype(DType::F32)
        .plan()
        .unwrap();
    assert!(!f32_plan.cluster);
}

#[test]
fn philox_matches_the_known_answers() {
    use streamtopk::kernels::philox::{draw, philox4x32_10, uniform};
    // Random123's kat_vectors for philox4x32_10.
    assert_eq!(
        philox4x32_10([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox4x32_10(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
    // Counter (word0, row, offset lo, offset hi), key (seed lo, seed hi).
    assert_eq!(
        draw(
            0x299f31d0_a4093822,
            0x03707344_13198a2e,
            0x85a308d3,
            0x243f6a88
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
    assert_eq!(uniform(0), 0.0);
    assert!(uniform(u32::MAX) < 1.0);
}

#[test]
fn sampler_configs_are_validated() {
    use streamtopk::SamplerConfig;
    assert!(SamplerConfig::new(1, 50304, 50).plan().is_ok());
    assert!(SamplerConfig::new(64, 151936, 1024).plan().is_ok());
    assert!(matches!(
        SamplerConfig::new(1, 100, 0).plan(),
        Err(Error::MaxK {
            max_k: 0,
            vocab: 100
        })
    ));
    assert!(matches!(
        SamplerConfig::new(1, 100, 101).plan(),
        Err(Error::MaxK { .. })
    ));
    assert!(matches!(
        SamplerConfig::new(1, 0, 1).plan(),
        Err(Error::VocabZero)
    ));
    assert!(matches!(
        SamplerConfig::new(0, 100, 1).plan(),
        Err(Error::BatchZero)
    ));
}
