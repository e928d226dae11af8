//! GPU tests of the fused sampler: greedy = argmax, chi-square tests of the
//! draws against the exact renormalised probabilities, allowed sets,
//! reproducibility, edge cases. Run with `--include-ignored` on a GPU.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{convert, logits, setup, ALL_DISTS};
use cust::memory::{CopyDestination, DeviceBuffer};
use cust::stream::Stream;
use streamtopk::kernels::element::Element;
use streamtopk::{reference, DType, Error, Kernels, Logit, Sampler, SamplerConfig, Sampling};

fn greedy_case<T: Logit>(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    values: &[f32],
    batch: usize,
    vocab: usize,
    what: &str,
) {
    let host: Vec<T> = convert(values);
    let config = SamplerConfig::new(batch, vocab, 1).with_dtype(T::Kernel::DTYPE);
    let mut sampler = Sampler::new(kernels, config).unwrap();
    let tokens = sampler
        .sample_host(stream, &host, &vec![Sampling::greedy(); batch])
        .unwrap();
    let (_, argmax) = reference::topk(&host, batch, vocab, 1);
    assert_eq!(tokens, argmax, "{what}");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn greedy_is_torch_argmax_on_every_distribution() {
    let (kernels, stream) = setup();
    for (batch, vocab) in [
        (1, 50304),
        (4, 50304),
        (3, 4099),
        (2, 151936),
        (1, 1),
        (5, 65),
        (1, 262144),
        (32, 50304),
    ] {
        for dist in ALL_DISTS {
            let values = logits(dist, batch, vocab, 1, 17);
            let what = format!("{dist:?} batch={batch} vocab={vocab}");
            greedy_case::<half::bf16>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                &format!("bf16 {what}"),
            );
            greedy_case::<half::f16>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                &format!("f16 {what}"),
            );
            greedy_case::<f32>(
                &kernels,
                &stream,
                &values,
                batch,
                vocab,
                &format!("f32 {what}"),
            );
        }
    }
}

/// The sampler's distribution for one row, from its definition (f64):
/// `(index, probability)` of every allowed token.
fn expected(row: &[f32], s: Sampling, max_k: usize) -> Vec<(u32, f64)> {
    let vocab = row.len();
    let mut order: Vec<(f32, u32)> = row.iter().copied().zip(0..).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let t = s.temperature as f64;
    let off = s.top_k == 0 || s.top_k >= vocab;
    if off && max_k < vocab {
        // Whole-row softmax (Gumbel-max path).
        let v0 = order[0].0 as f64;
        let w: Vec<f64> = row.iter().map(|&v| ((v as f64 - v0) / t).exp()).collect();
        let z: f64 = w.iter().sum();
        return (0..vocab as u32)
            .zip(w)
            .map(|(i, w)| (i, w / z))
            .filter(|x| x.1 > 0.0)
            .collect();
    }
    let kk = if off { vocab } else { s.top_k };
    let v0 = order[0].0;
    let w: Vec<f64> = order[..kk]
        .iter()
        .map(|&(v, _)| {
            if v == v0 {
                1.0
            } else {
                ((v as f64 - v0 as f64) / t).exp()
            }
        })
        .collect();
    let z: f64 = w.iter().sum();
    let mut m = kk;
    if s.top_p < 1.0 {
        let mut acc = 0.0;
        let edge = (0..kk).find(|&j| {
            acc += w[j];
            acc >= s.top_p as f64 * z
        });
        let edge = order[edge.unwrap_or(kk - 1)].0;
        m = m.min(order[..kk].iter().filter(|x| x.0 >= edge).count());
    }
    m = m
        .min(w.iter().filter(|&&x| x >= s.min_p as f64).count())
        .max(1);
    let zm: f64 = w[..m].iter().sum();
    (0..m).map(|j| (order[j].1, w[j] / zm)).collect()
}

/// Upper tail of the chi-square distribution: Q(df / 2, x / 2).
fn chi_square_p(x: f64, df: f64) -> f64 {
    let (a, x) = (df / 2.0, x / 2.0);
    let ln_gamma = |z: f64| {
        // Lanczos (g = 7, n = 9).
        const C: [f64; 9] = [
            0.999_999_999_999_809_9,
            676.520_368_121_885_1,
            -1_259.139_216_722_402_8,
            771.323_428_777_653_1,
            -176.615_029_162_140_6,
            12.507_343_278_686_905,
            -0.138_571_095_265_720_12,
            9.984_369_578_019_572e-6,
            1.505_632_735_149_311_6e-7,
        ];
        let z = z - 1.0;
        let mut s = C[0];
        for (i, c) in C.iter().enumerate().skip(1) {
            s += c / (z + i as f64);
        }
        let t = z + 7.5;
        0.5 * (2.0 * std::f64::consts::PI).ln() + (z + 0.5) * t.ln() - t + s.ln()
    };
    if x <= 0.0 {
        return 1.0;
    }
    if x < a + 1.0 {
        // Series for P, then Q = 1 - P.
        let (mut sum, mut term, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term < sum * 1e-15 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - ln_gamma(a)).exp()
    } else {
        // Continued fraction for Q (Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < tiny { tiny } else { d };
            c = b + an / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - ln_gamma(a)).exp() * h
    }
}

/// Draws `rows * calls` tokens for `row` (every row the same) and checks
/// them against [`expected`]: never outside the allowed set, chi-square
/// p > 0.001 (bins with expected count < 5 pooled).
fn check_distribution<T: Logit>(row: &[f32], s: Sampling, max_k: usize, what: &str) {
    let (kernels, stream) = setup();
    let vocab = row.len();
    let (rows, calls) = (1000, 1000);
    let config = SamplerConfig::new(rows, vocab, max_k)
        .with_dtype(T::Kernel::DTYPE)
        .with_seed(0x5a5a_0000 ^ vocab as u64);
    let mut sampler = Sampler::new(&kernels, config).unwrap();
    let host: Vec<T> = convert(&row.repeat(rows));
    // Probabilities of the values as the kernel sees them (rounded to T).
    let rounded: Vec<f32> = host[..vocab].iter().map(|v| v.to_f32()).collect();
    let probs = expected(&rounded, s, max_k);
    let input = DeviceBuffer::from_slice(&host).unwrap();
    let params = sampler.params(&vec![s; rows]).unwrap();
    let mut tokens = DeviceBuffer::<u32>::zeroed(rows).unwrap();
    let mut counts: HashMap<u32, u64> = HashMap::new();
    let mut out = vec![0u32; rows];
    for _ in 0..calls {
        sampler
            .sample(&stream, &input, &params, &mut tokens)
            .unwrap();
        stream.synchronize().unwrap();
        tokens.copy_to(&mut out[..]).unwrap();
        for &t in &out {
            *counts.entry(t).or_default() += 1;
        }
    }
    assert_eq!(sampler.offset().unwrap(), calls as u64);
    let n = (rows * calls) as f64;
    let allowed: HashMap<u32, f64> = probs.iter().copied().collect();
    for (&t, &c) in &counts {
        assert!(
            allowed.contains_key(&t),
            "{what}: token {t} drawn {c} times is outside the allowed set"
        );
    }
    let (mut chi, mut bins, mut pooled_e, mut pooled_o) = (0.0, 0usize, 0.0, 0.0);
    for &(t, p) in &probs {
        let e = p * n;
        let o = *counts.get(&t).unwrap_or(&0) as f64;
        if e < 5.0 {
            pooled_e += e;
            pooled_o += o;
        } else {
            chi += (o - e) * (o - e) / e;
            bins += 1;
        }
    }
    if pooled_e > 0.0 {
        chi += (pooled_o - pooled_e).powi(2) / pooled_e.max(1e-9);
        bins += 1;
    }
    if bins <= 1 {
        eprintln!("{what}: one outcome, drawn {n} times");
        return;
    }
    let p = chi_square_p(chi, (bins - 1) as f64);
    eprintln!(
        "{what}: {} allowed tokens, {bins} bins, chi2 = {chi:.1}, p = {p:.4}",
        probs.len()
    );
    assert!(
        p > 0.001,
        "{what}: chi-square {chi} over {bins} bins, p = {p}"
    );
}

fn scaled_randn(vocab: usize, scale: f32, seed: u64) -> Vec<f32> {
    streamtopk::io::randn(vocab, seed)
        .into_iter()
        .map(|v| v * scale)
        .collect()
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn draws_follow_the_renormalised_distribution() {
    let row = scaled_randn(1000, 2.0, 1);
    check_distribution::<half::bf16>(&row, Sampling::new(0.8, 20), 20, "top-k 20");
    check_distribution::<f32>(
        &row,
        Sampling::new(1.0, 50).with_top_p(0.7),
        64,
        "top-k 50, top-p 0.7",
    );
    check_distribution::<half::f16>(
        &row,
        Sampling::new(1.0, 0).with_top_p(0.9),
        1000,
        "top-p 0.9",
    );
    check_distribution::<half::bf16>(
        &row,
        Sampling::new(1.0, 0).with_min_p(0.05),
        1000,
        "min-p 0.05",
    );
    check_distribution::<f32>(
        &row,
        Sampling::new(0.7, 50).with_top_p(0.8).with_min_p(0.02),
        50,
        "top-k 50, top-p 0.8, min-p 0.02",
    );
    check_distribution::<half::bf16>(
        &row,
        Sampling::new(1.0, 0),
        50,
        "whole-row softmax (Gumbel)",
    );
    let wide = scaled_randn(50304, 3.0, 2);
    check_distribution::<half::bf16>(
        &wide,
        Sampling::new(1.0, 0),
        50,
        "whole-row softmax, vocab 50304",
    );
    check_distribution::<half::bf16>(
        &wide,
        Sampling::new(1.0, 50),
        50,
        "nanochat top-k 50, vocab 50304",
    );
    check_distribution::<f32>(&row, Sampling::new(1e6, 30), 30, "temperature 1e6");
    check_distribution::<f32>(&row, Sampling::new(1e-6, 30), 30, "temperature 1e-6");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn ties_at_the_kth_value_follow_top_k() {
    // One 5 at index 7, the 3s at 2, 4, 9, 11, 30, the rest -1.
    let mut row = vec![-1.0f32; 64];
    row[7] = 5.0;
    for i in [2, 4, 9, 11, 30] {
        row[i] = 3.0;
    }
    check_distribution::<half::bf16>(&row, Sampling::new(1.0, 1), 4, "k = 1");
    check_distribution::<half::bf16>(
        &row,
        Sampling::new(1.0, 2),
        4,
        "k = 2, ties at the 2nd value",
    );
    check_distribution::<f32>(
        &row,
        Sampling::new(2.0, 4),
        4,
        "k = 4, ties at the 4th value",
    );
    // All equal: the first k indices, uniformly.
    check_distribution::<half::f16>(
        &vec![0.5; 100],
        Sampling::new(1.0, 3),
        3,
        "all equal, k = 3",
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn edge_rows_have_defined_answers() {
    let (kernels, stream) = setup();
    let vocab = 5000;
    let mut one = vec![f32::NEG_INFINITY; vocab];
    one[4321] = -3.0;
    let mut nan = scaled_randn(vocab, 1.0, 3);
    nan[17] = f32::NAN;
    nan[2000] = f32::NAN;
    let all_inf = vec![f32::NEG_INFINITY; vocab];
    let rows = [one.clone(), nan.clone(), all_inf.clone()].concat();
    for (max_k, s) in [
        (50, Sampling::new(1.0, 50)),
        (50, Sampling::new(1.0, 0)),
        (50, Sampling::new(0.5, 50).with_top_p(0.5)),
    ] {
        let mut sampler = Sampler::new(
            &kernels,
            SamplerConfig::new(3, vocab, max_k).with_dtype(DType::F32),
        )
        .unwrap();
        for _ in 0..20 {
            let t = sampler.sample_host(&stream, &rows, &[s; 3]).unwrap();
            assert_eq!(t[0], 4321, "all -inf but one ({s:?})");
            assert_eq!(t[1], 17, "NaN row: the first NaN ({s:?})");
            assert!((t[2] as usize) < vocab, "all -inf: an id in range ({s:?})");
        }
    }
    // Vocab 1.
    let mut sampler = Sampler::new(&kernels, SamplerConfig::new(2, 1, 1)).unwrap();
    let t = sampler
        .sample_host(
            &stream,
            &convert::<half::bf16>(&[1.0, f32::NEG_INFINITY]),
            &[Sampling::new(1.0, 0), Sampling::new(1e-6, 1)],
        )
        .unwrap();
    assert_eq!(t, vec![0, 0]);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn same_seed_same_tokens_across_runs_batches_and_graphs() {
    let (kernels, stream) = setup();
    let (batch, vocab) = (8, 50304);
    let values: Vec<half::bf16> = convert(&scaled_randn(batch * vocab, 1.0, 4));
    let input = DeviceBuffer::from_slice(&values).unwrap();
    for s in [
        Sampling::new(1.0, 50),
        Sampling::new(1.0, 0),
        Sampling::new(0.9, 40).with_top_p(0.9),
    ] {
        let make = |b: usize| {
            Sampler::new(&kernels, SamplerConfig::new(b, vocab, 50).with_seed(42)).unwrap()
        };
        let calls = 6;
        let run_plain = |sampler: &mut Sampler, b: usize| -> Vec<Vec<u32>> {
            let params = sampler.params(&vec![s; b]).unwrap();
            let mut tokens = DeviceBuffer::<u32>::zeroed(b).unwrap();
            let slice = input.index(..b * vocab);
            (0..calls)
                .map(|_| {
                    sampler
                        .sample(&stream, &slice, &params, &mut tokens)
                        .unwrap();
                    stream.synchronize().unwrap();
                    let mut out = vec![0u32; b];
                    tokens.copy_to(&mut out[..]).unwrap();
                    out
                })
                .collect()
        };
        let first = run_plain(&mut make(batch), batch);
        assert_eq!(
            first,
            run_plain(&mut make(batch), batch),
            "{s:?}: two runs differ"
        );
        let small = run_plain(&mut make(3), 3);
        for (a, b) in first.iter().zip(&small) {
            assert_eq!(
                &a[..3],
                &b[..],
                "{s:?}: batch 3 differs from the first rows of batch 8"
            );
        }
        assert!(
            first.windows(2).any(|w| w[0] != w[1]),
            "{s:?}: every call drew the same tokens"
        );
        // Graph replay of one call continues the same sequence.
        let mut sampler = make(batch);
        let params = sampler.params(&vec![s; batch]).unwrap();
        let mut tokens = DeviceBuffer::<u32>::zeroed(batch).unwrap();
        let graph = streamtopk::Graph::capture(&stream, |st| {
            sampler.sample(st, &input, &params, &mut tokens)
        })
        .unwrap();
        for (call, expect) in first.iter().enumerate() {
            graph.launch(&stream).unwrap();
            stream.synchronize().unwrap();
            let mut out = vec![0u32; batch];
            tokens.copy_to(&mut out[..]).unwrap();
            assert_eq!(&out, expect, "{s:?}: graph replay {call} differs");
        }
        drop(graph);
        assert_eq!(sampler.offset().unwrap(), calls as u64);
        // Setting the offset back replays the numbers.
        sampler.set_offset(2).unwrap();
        sampler
            .sample(&stream, &input, &params, &mut tokens)
            .unwrap();
        stream.synchronize().unwrap();
        let mut out = vec![0u32; batch];
        tokens.copy_to(&mut out[..]).unwrap();
        assert_eq!(out, first[2], "{s:?}: offset 2 again");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn bad_sampling_parameters_are_refused() {
    let (kernels, stream) = setup();
    let sampler = Sampler::new(&kernels, SamplerConfig::new(2, 1000, 50)).unwrap();
    for (s, needle) in [
        (Sampling::new(-1.0, 5), "temperature = -1"),
        (Sampling::new(f32::NAN, 5), "temperature = NaN"),
        (
            Sampling::new(1.0, 51),
            "top_k = 51 is above the sampler's max_k (50)",
        ),
        (Sampling::new(1.0, 5).with_top_p(0.0), "top_p = 0"),
        (Sampling::new(1.0, 5).with_top_p(1.5), "top_p = 1.5"),
        (Sampling::new(1.0, 5).with_min_p(-0.1), "min_p = -0.1"),
        (
            Sampling::new(1.0, 0).with_top_p(0.9),
            "whole-vocabulary nucleus",
        ),
    ] {
        match sampler.params(&[Sampling::greedy(), s]) {
            Err(e @ Error::Sampling { row: 1, .. }) => {
                assert!(e.to_string().contains(needle), "{e} lacks {needle:?}")
            }
            Err(e) => panic!("{s:?}: unexpected {e}"),
            Ok(_) => panic!("{s:?} accepted"),
        }
    }
    assert!(matches!(sampler.params(&[]), Err(Error::BatchZero)));
    assert!(matches!(
        sampler.params(&[Sampling::greedy(); 3]),
        Err(Error::BatchAboveMax { .. })
    ));
    let mut sampler = Sampler::new(&kernels, SamplerConfig::new(2, 1000, 50)).unwrap();
    assert!(matches!(
        sampler.sample_host(&stream, &vec![0f32; 2000], &[Sampling::greedy(); 2]),
        Err(Error::DTypeMismatch { .. })
    ));
    assert!(matches!(
        sampler.sample_host(
            &stream,
            &vec![half::bf16::ZERO; 1999],
            &[Sampling::greedy(); 2]
        ),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        Sampler::new(&kernels, SamplerConfig::new(2, 1000, 1001)),
        Err(Error::MaxK { .. })
    ));
}

/// The cluster-per-row sampler (forced through `$STREAMTOPK_CLUSTER`) draws
/// the same tokens as the chunked one from the same seed and offset: the
/// same sorted top-k lists, the same Philox numbers.
#[test]
#[ignore = "needs a CUDA GPU"]
fn cluster_sampler_draws_what_the_chunked_one_draws() {
    let (kernels, stream) = setup();
    let (batch, vocab, max_k) = (6, 50304, 200);
    let rows = [
        Sampling::new(1.0, 50),
        Sampling::new(0.7, 200),
        Sampling::greedy(),
        Sampling::new(1.3, 100).with_top_p(0.9),
        Sampling::new(1.0, 200).with_min_p(0.05),
        Sampling::new(2.0, 1),
    ];
    for dtype in [DType::BF16, DType::F16, DType::F32] {
        for seed in 0..3u64 {
            let values = logits(ALL_DISTS[seed as usize], batch, vocab, max_k, seed);
            let tokens = |cluster: &str| {
                std::env::set_var(streamtopk::plan::CLUSTER_ENV, cluster);
                let config = SamplerConfig::new(batch, vocab, max_k)
                    .with_dtype(dtype)
                    .with_seed(seed);
                let mut sampler = Sampler::new(&kernels, config).unwrap();
                std::env::remove_var(streamtopk::plan::CLUSTER_ENV);
                let plan = *sampler.plan();
                let mut out = Vec::new();
                for _ in 0..4 {
                    out.push(
                        match dtype {
                            DType::BF16 => {
                                sampler.sample_host(&stream, &convert::<half::bf16>(&values), &rows)
                            }
                            DType::F16 => {
                                sampler.sample_host(&stream, &convert::<half::f16>(&values), &rows)
                            }
                            DType::F32 => {
                                sampler.sample_host(&stream, &convert::<f32>(&values), &rows)
                            }
                        }
                        .unwrap(),
                    );
                }
                (plan, out)
            };
            let (cluster_plan, ours) = tokens("8,512");
            let (chunked_plan, theirs) = tokens("off");
            assert!(
                cluster_plan.cluster && !chunked_plan.cluster,
                "{cluster_plan:?} {chunked_plan:?}"
            );
            assert_eq!(ours, theirs, "{dtype:?} seed {seed}");
        }
    }
}
