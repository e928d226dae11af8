//! GPU reliability tests: randomised exactness, misaligned inputs, faults
//! (out of memory, PTX for a newer GPU), load and concurrency, and the
//! shapes `bench/sanitize.sh` runs under compute-sanitizer. Run on a CUDA
//! machine with `cargo test --release -- --include-ignored`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use common::{convert, logits, setup, Rng, ALL_DISTS};
use cust::event::{Event, EventFlags, EventStatus};
use cust::memory::{mem_get_info, CopyDestination, DeviceBuffer, DeviceSlice};
use cust::stream::{Stream, StreamFlags};
use streamtopk::io::Logits;
use streamtopk::kernels::element::Element;
use streamtopk::{reference, DType, Error, Kernels, Logit, TopK, TopKConfig};

/// Top-k of `host` (`[batch, vocab]`) starting `offset` elements into a
/// device buffer, so that the kernel sees a pointer of that alignment.
fn run_at_offset<T: Logit>(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    host: &[T],
    batch: usize,
    vocab: usize,
    k: usize,
    offset: usize,
) -> Result<(Vec<f32>, Vec<u32>), Error> {
    let config = TopKConfig::new(batch, vocab, k).with_dtype(T::Kernel::DTYPE);
    let mut topk = TopK::new(kernels, config)?;
    let mut padded = vec![T::from_f32(f32::NAN); offset];
    padded.extend_from_slice(host);
    let buffer = DeviceBuffer::from_slice(&padded)?;
    let input: DeviceSlice<T> = buffer.index(offset..);
    let mut values = DeviceBuffer::<f32>::zeroed(batch * k)?;
    let mut indices = DeviceBuffer::<u32>::zeroed(batch * k)?;
    topk.run(stream, &input, batch, &mut values, &mut indices)?;
    stream.synchronize()?;
    let (mut v, mut i) = (vec![0f32; batch * k], vec![0u32; batch * k]);
    values.copy_to(&mut v[..])?;
    indices.copy_to(&mut i[..])?;
    Ok((v, i))
}

/// Panics with `what` unless `(v, i)` is the reference top-k of `host`.
fn assert_reference<T: Logit>(
    host: &[T],
    batch: usize,
    vocab: usize,
    k: usize,
    (v, i): (Vec<f32>, Vec<u32>),
    what: &str,
) {
    let (rv, ri) = reference::topk(host, batch, vocab, k);
    if let Some(j) = reference::first_mismatch(&v, &i, &rv, &ri) {
        panic!(
            "{what}: row {}, rank {}: got ({}, {}), expected ({}, {})",
            j / k,
            j % k,
            v[j],
            i[j],
            rv[j],
            ri[j]
        );
    }
}

fn check_at_offset<T: Logit>(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    values: &[f32],
    (batch, vocab, k): (usize, usize, usize),
    offset: usize,
) {
    let host: Vec<T> = convert(values);
    let what = format!(
        "{:?} batch={batch} vocab={vocab} k={k} offset={offset}",
        T::Kernel::DTYPE
    );
    let out = run_at_offset(kernels, stream, &host, batch, vocab, k, offset)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_reference(&host, batch, vocab, k, out, &what);
}

/// The shapes every code path takes: one chunk and many, rank sort and
/// bitonic sort, vocab not a multiple of the vector width, k = vocab, k =
/// 2048 on f32 (longer chunks), inputs at odd element offsets; the filter
/// body merging in the row's last block (17 rows after a `SAMPLE` launch;
/// 33 rows of 50,304 after a `BOUND` launch), in a merge launch after a
/// `SAMPLE` launch (33 rows, k = 300; 24 rows, k = 1024, more than a
/// block's rank count could bound) and after one pass (65 rows, k = 50).
/// On `NanInf` rows.
const SANITIZER_SHAPES: [(usize, usize, usize, usize); 14] = [
    (1, 50304, 50, 0),
    (4, 50304, 200, 1),
    (2, 151936, 1024, 3),
    (3, 4099, 7, 1),
    (2, 1000, 1000, 0),
    (2, 65, 64, 5),
    (1, 1, 1, 1),
    (5, 12345, 300, 7),
    (1, 300_000, 2048, 2),
    (17, 262_147, 100, 1),
    (33, 151_936, 300, 2),
    (24, 151_936, 1024, 1),
    (67, 50304, 100, 1),
    (65, 262_147, 50, 3),
];

/// Shapes the sanitizers also run on `Randn` rows, whose candidates the
/// bucket sort takes (`NanInf` rows' NaN ties overflow its buckets): the
/// cluster body at k = 200 and 1024, the filter body's merge launch and
/// its last-block merge.
const RANDN_SHAPES: [(usize, usize, usize, usize); 4] = [
    (4, 50304, 200, 1),
    (2, 151936, 1024, 3),
    (33, 151_936, 300, 2),
    (17, 262_147, 200, 1),
];

fn check_shapes(dist: common::Dist, shapes: &[(usize, usize, usize, usize)]) {
    let (kernels, stream) = setup();
    for &(batch, vocab, k, offset) in shapes {
        let values = logits(dist, batch, vocab, k, 5);
        let shape = (batch, vocab, k);
        check_at_offset::<half::bf16>(&kernels, &stream, &values, shape, offset);
        check_at_offset::<half::f16>(&kernels, &stream, &values, shape, offset);
        check_at_offset::<f32>(&kernels, &stream, &values, shape, offset);
    }
}

/// The set `bench/sanitize.sh` runs under each compute-sanitizer tool: the
/// top-k shapes, then the sampler's paths (greedy, top-k list with top-p
/// and min-p, whole-row Gumbel) on one chunk and many.
#[test]
#[ignore = "needs a CUDA GPU"]
fn sanitizer_shapes() {
    check_shapes(common::Dist::NanInf, &SANITIZER_SHAPES);
    check_shapes(common::Dist::Randn, &RANDN_SHAPES);
    let (kernels, stream) = setup();
    for (batch, vocab, max_k) in [
        (1, 50304, 50),
        (3, 4099, 7),
        (2, 151_936, 1024),
        (2, 12_345, 1),
    ] {
        let values: Vec<half::bf16> =
            convert(&logits(common::Dist::NanInf, batch, vocab, max_k, 6));
        let config = streamtopk::SamplerConfig::new(batch, vocab, max_k);
        let mut sampler = streamtopk::Sampler::new(&kernels, config).unwrap();
        for row in [
            streamtopk::Sampling::greedy(),
            streamtopk::Sampling::new(0.8, max_k)
                .with_top_p(0.9)
                .with_min_p(0.01),
            streamtopk::Sampling::new(1.0, 0),
        ] {
            let tokens = sampler
                .sample_host(&stream, &values, &vec![row; batch])
                .unwrap();
            assert!(tokens.iter().all(|&t| (t as usize) < vocab), "{tokens:?}");
        }
    }
}

/// Hand-written kernels with one bug each, so that `bench/sanitize.sh` can
/// show each tool finds what it is for: a store one element past a
/// one-element buffer (inside the allocation's granule, so a plain run is
/// unharmed), a shared-memory race between two warps, and a load of memory
/// never written.
const FAULTY_PTX: &str = r#"
.version 7.8
.target sm_90
.address_size 64
.visible .entry out_of_bounds(.param .u64 buf) {
    .reg .b64 %rd<2>;
    .reg .b32 %r<2>;
    ld.param.u64 %rd1, [buf];
    cvta.to.global.u64 %rd1, %rd1;
    mov.u32 %r1, 7;
    st.global.u32 [%rd1+4], %r1;
    ret;
}
.visible .entry shared_race(.param .u64 buf) {
    .shared .align 4 .u32 word;
    .reg .b64 %rd<2>;
    .reg .b32 %r<3>;
    mov.u32 %r1, %tid.x;
    st.shared.u32 [word], %r1;
    ld.shared.u32 %r2, [word];
    ld.param.u64 %rd1, [buf];
    cvta.to.global.u64 %rd1, %rd1;
    st.global.u32 [%rd1], %r2;
    ret;
}
.visible .entry uninitialized_read(.param .u64 buf) {
    .reg .b64 %rd<2>;
    .reg .b32 %r<2>;
    ld.param.u64 %rd1, [buf];
    cvta.to.global.u64 %rd1, %rd1;
    ld.global.u32 %r1, [%rd1+4];
    st.global.u32 [%rd1], %r1;
    ret;
}
"#;

/// The negative control of `bench/sanitize.sh` (`$STREAMTOPK_FAULT` names
/// the faulty kernel to run; each tool must report it). Harmless without a
/// sanitizer.
#[test]
#[ignore = "needs a CUDA GPU"]
fn sanitizer_control() {
    use cust::module::Module;
    let (kernels, stream) = setup();
    kernels.make_current().unwrap();
    let module = Module::from_ptx(FAULTY_PTX, &[]).unwrap();
    let fault = std::env::var("STREAMTOPK_FAULT").unwrap_or_else(|_| "shared_race".into());
    let function = module.get_function(&fault).unwrap();
    let buffer = if fault == "uninitialized_read" {
        // SAFETY: u32 has no invalid bit patterns; leaving the words
        // unwritten is the planted bug.
        unsafe { DeviceBuffer::<u32>::uninitialized(2).unwrap() }
    } else {
        DeviceBuffer::from_slice(&[0u32]).unwrap()
    };
    let mut ptr = buffer.as_device_ptr().as_raw();
    let args = [&mut ptr as *mut u64 as *mut std::ffi::c_void];
    // SAFETY: each kernel touches at most the first 8 bytes of `buffer`,
    // which lie inside its allocation granule (cuMemAlloc rounds up to at
    // least 256 bytes).
    unsafe { stream.launch(&function, 1, 64, 0, &args).unwrap() };
    stream.synchronize().unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn misaligned_inputs_match_the_reference() {
    let mut shapes = Vec::new();
    for offset in 0..8 {
        for (batch, vocab, k) in [
            (3, 50304, 50),
            (2, 50305, 129),
            (2, 777, 33),
            (1, 131_071, 2000),
        ] {
            shapes.push((batch, vocab, k, offset));
        }
    }
    check_shapes(common::Dist::NanInf, &shapes);
}

/// One randomised case: its parameters, its logits and the reference answer.
struct Case {
    what: String,
    batch: usize,
    vocab: usize,
    k: usize,
    logits: Logits,
    reference: (Vec<f32>, Vec<u32>),
}

const RANDOM_SEED: u64 = 0x5eed_2026_1124;

/// Case `id` of the randomised test: batch 1..=512, vocab 1..=300,000, k
/// 1..=min(vocab, 2048), every dtype and distribution. Elements per case
/// are capped at 32M by shrinking the batch (the CPU reference must keep
/// up), except the first three cases, which are the largest shape.
fn make_case(id: usize) -> Case {
    let mut rng = Rng::new(RANDOM_SEED ^ id as u64);
    let log_uniform = |rng: &mut Rng, hi: usize| {
        if hi <= 1 {
            return 1;
        }
        let bits = (rng.next() % ((hi as f64).log2() * 1024.0) as u64) as f64 / 1024.0;
        (bits.exp2() as usize).clamp(1, hi)
    };
    let (batch, vocab) = if id < 3 {
        (512, 300_000)
    } else {
        let batch = log_uniform(&mut rng, 512);
        let vocab = match rng.next() % 4 {
            0 => rng.range(1, 300),
            1 => log_uniform(&mut rng, 300_000),
            _ => rng.range(1, 300_000),
        };
        (batch.min((32 << 20) / vocab).max(1), vocab)
    };
    let most = vocab.min(2048);
    let k = match rng.next() % 4 {
        0 => rng.range(1, most),
        1 => log_uniform(&mut rng, most),
        2 => most,
        _ => [1, 2, 50, most - most / 3][rng.range(0, 3)].min(most),
    };
    let dtype = [DType::BF16, DType::F16, DType::F32][id % 3];
    let dist = ALL_DISTS[(id / 3) % ALL_DISTS.len()];
    let seed = rng.next();
    let what = format!(
        "case {id} (replay: STREAMTOPK_CASE={id}): {dtype:?} {dist:?} batch={batch} vocab={vocab} k={k} seed={seed:#x}"
    );
    let values = logits(dist, batch, vocab, k, seed);
    let (logits, reference) = match dtype {
        DType::BF16 => {
            let data: Vec<half::bf16> = convert(&values);
            let r = reference::topk(&data, batch, vocab, k);
            (Logits::BF16 { data, batch, vocab }, r)
        }
        DType::F16 => {
            let data: Vec<half::f16> = convert(&values);
            let r = reference::topk(&data, batch, vocab, k);
            (Logits::F16 { data, batch, vocab }, r)
        }
        DType::F32 => {
            let r = reference::topk(&values, batch, vocab, k);
            (
                Logits::F32 {
                    data: values,
                    batch,
                    vocab,
                },
                r,
            )
        }
    };
    Case {
        what,
        batch,
        vocab,
        k,
        logits,
        reference,
    }
}

fn run_case(
    kernels: &Arc<Kernels>,
    stream: &Stream,
    case: &Case,
) -> Result<(Vec<f32>, Vec<u32>), Error> {
    let (batch, vocab, k) = (case.batch, case.vocab, case.k);
    let run = |dtype| TopK::new(kernels, TopKConfig::new(batch, vocab, k).with_dtype(dtype));
    match &case.logits {
        Logits::BF16 { data, .. } => run(DType::BF16)?.run_host(stream, data, batch),
        Logits::F16 { data, .. } => run(DType::F16)?.run_host(stream, data, batch),
        Logits::F32 { data, .. } => run(DType::F32)?.run_host(stream, data, batch),
    }
}

/// 2000 random cases (`$STREAMTOPK_CASES` to change, `$STREAMTOPK_CASE=N`
/// to replay one) against the CPU reference. Worker threads make the
/// logits and reference answers while the GPU runs.
#[test]
#[ignore = "needs a CUDA GPU"]
fn random_exactness_2000_cases() {
    let (kernels, stream) = setup();
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let ids: Vec<usize> = match env("STREAMTOPK_CASE") {
        Some(id) => vec![id],
        None => (0..env("STREAMTOPK_CASES").unwrap_or(2000)).collect(),
    };
    let total = ids.len();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .clamp(1, 12);
    let (send, receive) = mpsc::sync_channel::<Case>(4);
    let mut passed = 0;
    let mut elements = 0usize;
    std::thread::scope(|s| {
        for _ in 0..workers {
            let send = send.clone();
            let (next, ids) = (&next, &ids);
            s.spawn(move || loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= ids.len() || send.send(make_case(ids[j])).is_err() {
                    break;
                }
            });
        }
        drop(send);
        let mut failures = Vec::new();
        for (done, case) in receive.into_iter().enumerate() {
            elements += case.batch * case.vocab;
            let (rv, ri) = &case.reference;
            match run_case(&kernels, &stream, &case) {
                Ok((v, i)) => match reference::first_mismatch(&v, &i, rv, ri) {
                    None => passed += 1,
                    Some(j) => failures.push(format!(
                        "{}: row {}, rank {}: got ({}, {}), expected ({}, {})",
                        case.what,
                        j / case.k,
                        j % case.k,
                        v[j],
                        i[j],
                        rv[j],
                        ri[j]
                    )),
                },
                Err(e) => failures.push(format!("{}: {e}", case.what)),
            }
            if (done + 1) % 200 == 0 {
                eprintln!(
                    "random cases: {}/{total} run, {} failed",
                    done + 1,
                    failures.len()
                );
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {total} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    });
    eprintln!("random_exactness: {passed}/{total} cases matched the reference ({elements} logits)");
    assert_eq!(passed, total);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn out_of_memory_is_an_error_and_the_next_call_works() {
    let (kernels, stream) = setup();
    // An operator made while memory is free, then a device left with ~1 GiB.
    let (batch, vocab) = (4096, 131_072);
    let mut wide = TopK::new(
        &kernels,
        TopKConfig::new(batch, vocab, 50).with_dtype(DType::F32),
    )
    .unwrap();
    let (free, _) = mem_get_info().unwrap();
    let filler = DeviceBuffer::<u8>::zeroed(free - (1 << 30)).unwrap();
    // A workspace of ~10 GiB (65,535 rows of 2048-word lists) cannot fit.
    match TopK::new(&kernels, TopKConfig::new(65_535, 300_000, 2048)) {
        Err(e @ Error::OutOfMemory { .. }) => eprintln!("big workspace: {e}"),
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("a 10 GiB workspace fitted in 1 GiB"),
    }
    // Neither do 2 GiB of logits.
    let huge = vec![0f32; batch * vocab];
    match wide.run_host(&stream, &huge, batch) {
        Err(e @ Error::OutOfMemory { .. }) => eprintln!("big input: {e}"),
        Err(e) => panic!("expected OutOfMemory, got {e}"),
        Ok(_) => panic!("2 GiB of logits fitted in 1 GiB"),
    }
    drop(filler);
    let (free_after, _) = mem_get_info().unwrap();
    assert!(
        free_after + (64 << 20) >= free,
        "memory leaked: {free} -> {free_after}"
    );
    // The operator that saw the failure and a new one both still work.
    let values = logits(common::Dist::Randn, 8, vocab, 50, 3);
    let out = wide.run_host(&stream, &values[..], 8).unwrap();
    assert_reference(
        &values,
        8,
        vocab,
        50,
        out,
        "the failed operator's next call",
    );
    let host: Vec<half::bf16> = convert(&values[..4 * 50304]);
    let mut topk = TopK::new(&kernels, TopKConfig::new(4, 50304, 50)).unwrap();
    let out = topk.run_host(&stream, &host, 4).unwrap();
    assert_reference(
        &host,
        4,
        50304,
        50,
        out,
        "a new operator after the failures",
    );
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn ptx_for_a_newer_gpu_is_refused() {
    let ptx = streamtopk::PTX.replace(".target sm_90", ".target sm_120");
    assert_ne!(ptx, streamtopk::PTX, "the PTX names no sm_90 target");
    match Kernels::load(&ptx, 0) {
        Err(e @ Error::PtxLoad(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("newer architecture"), "{msg}");
            eprintln!("{msg}");
        }
        Err(e) => panic!("expected PtxLoad, got {e}"),
        Ok(_) => panic!("sm_120 PTX loaded on this GPU"),
    }
    // The real module still loads and works.
    let (kernels, stream) = setup();
    let host: Vec<f32> = logits(common::Dist::Randn, 1, 1000, 10, 1);
    let out = TopK::new(
        &kernels,
        TopKConfig::new(1, 1000, 10).with_dtype(DType::F32),
    )
    .unwrap()
    .run_host(&stream, &host, 1)
    .unwrap();
    assert_reference(&host, 1, 1000, 10, out, "after the refused load");
}

/// Resident set of this process in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_million_calls_keep_memory_flat() {
    let (kernels, stream) = setup();
    let (batch, vocab, k) = (2, 8192, 16);
    let values = logits(common::Dist::Randn, batch, vocab, k, 9);
    let host: Vec<half::bf16> = convert(&values);
    let mut topk = TopK::new(&kernels, TopKConfig::new(batch, vocab, k)).unwrap();
    let input = DeviceBuffer::from_slice(&host).unwrap();
    let mut v = DeviceBuffer::<f32>::zeroed(batch * k).unwrap();
    let mut i = DeviceBuffer::<u32>::zeroed(batch * k).unwrap();
    for _ in 0..1000 {
        topk.run(&stream, &input, batch, &mut v, &mut i).unwrap();
    }
    stream.synchronize().unwrap();
    let (free_before, _) = mem_get_info().unwrap();
    let rss_before = rss();
    let calls = 1_000_000;
    let start = std::time::Instant::now();
    for call in 1..=calls {
        topk.run(&stream, &input, batch, &mut v, &mut i).unwrap();
        if call % 100_000 == 0 {
            stream.synchronize().unwrap();
            eprintln!("{call} calls, {:.1} s", start.elapsed().as_secs_f64());
        }
    }
    stream.synchronize().unwrap();
    let (free_after, _) = mem_get_info().unwrap();
    let rss_after = rss();
    eprintln!(
        "device free: {free_before} -> {free_after} bytes; host RSS: {rss_before} -> {rss_after} bytes"
    );
    assert_eq!(
        free_before, free_after,
        "device memory changed over {calls} calls"
    );
    assert!(
        rss_after <= rss_before + (8 << 20),
        "host memory grew: {rss_before} -> {rss_after}"
    );
    let (mut hv, mut hi) = (vec![0f32; batch * k], vec![0u32; batch * k]);
    v.copy_to(&mut hv[..]).unwrap();
    i.copy_to(&mut hi[..]).unwrap();
    assert_reference(&host, batch, vocab, k, (hv, hi), "after a million calls");
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn threads_with_their_own_streams_share_one_module() {
    let (kernels, stream) = setup();
    let shapes = [
        (4, 50304, 50),
        (2, 151936, 1024),
        (8, 4099, 7),
        (1, 262144, 2048),
    ];
    let inputs: Vec<Vec<half::bf16>> = shapes
        .iter()
        .enumerate()
        .map(|(j, &(b, v, k))| convert(&logits(common::Dist::Randn, b, v, k, j as u64)))
        .collect();
    // Serial answers first, on this thread.
    let serial: Vec<_> = shapes
        .iter()
        .zip(&inputs)
        .map(|(&(b, v, k), host)| {
            TopK::new(&kernels, TopKConfig::new(b, v, k))
                .unwrap()
                .run_host(&stream, host, b)
                .unwrap()
        })
        .collect();
    let threads = 8;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (kernels, shapes, inputs, serial) = (&kernels, &shapes, &inputs, &serial);
            s.spawn(move || {
                kernels.make_current().unwrap();
                let stream = Stream::new(StreamFlags::NON_BLOCKING, None).unwrap();
                let j = t % shapes.len();
                let (b, v, k) = shapes[j];
                let mut topk = TopK::new(kernels, TopKConfig::new(b, v, k)).unwrap();
                for call in 0..50 {
                    let out = topk.run_host(&stream, &inputs[j], b).unwrap();
                    assert!(
                        out == serial[j],
                        "thread {t}, call {call}: differs from the serial run"
                    );
                }
            });
        }
    });
    for (j, &(b, v, k)) in shapes.iter().enumerate() {
        assert_reference(&inputs[j], b, v, k, serial[j].clone(), "serial run");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn a_call_on_one_stream_does_not_wait_on_another() {
    let (kernels, busy) = setup();
    let quick = Stream::new(StreamFlags::NON_BLOCKING, None).unwrap();
    let (batch, vocab, k) = (256, 262144, 50);
    let big = DeviceBuffer::from_slice(&convert::<half::bf16>(&logits(
        common::Dist::Randn,
        batch,
        vocab,
        k,
        1,
    )))
    .unwrap();
    let mut bv = DeviceBuffer::<f32>::zeroed(batch * k).unwrap();
    let mut bi = DeviceBuffer::<u32>::zeroed(batch * k).unwrap();
    let mut long = TopK::new(&kernels, TopKConfig::new(batch, vocab, k)).unwrap();
    let small: Vec<half::bf16> = convert(&logits(common::Dist::Randn, 1, 50304, 50, 2));
    let mut short = TopK::new(&kernels, TopKConfig::new(1, 50304, 50)).unwrap();
    let small_input = DeviceBuffer::from_slice(&small).unwrap();
    let mut sv = DeviceBuffer::<f32>::zeroed(50).unwrap();
    let mut si = DeviceBuffer::<u32>::zeroed(50).unwrap();
    let (busy_done, quick_done) = (
        Event::new(EventFlags::DEFAULT).unwrap(),
        Event::new(EventFlags::DEFAULT).unwrap(),
    );
    // About 0.2 ms a call: ~100 ms of work queued on `busy`.
    for _ in 0..500 {
        long.run(&busy, &big, batch, &mut bv, &mut bi).unwrap();
    }
    busy_done.record(&busy).unwrap();
    short
        .run(&quick, &small_input, 1, &mut sv, &mut si)
        .unwrap();
    quick_done.record(&quick).unwrap();
    quick_done.synchronize().unwrap();
    let status = busy_done.query().unwrap();
    busy.synchronize().unwrap();
    assert!(
        matches!(status, EventStatus::NotReady),
        "the quick call finished only after the busy stream drained"
    );
    let (mut hv, mut hi) = (vec![0f32; 50], vec![0u32; 50]);
    sv.copy_to(&mut hv[..]).unwrap();
    si.copy_to(&mut hi[..]).unwrap();
    assert_reference(&small, 1, 50304, 50, (hv, hi), "the quick call");
}
