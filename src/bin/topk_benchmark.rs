//! `topk_benchmark`: time streamtopk's top-k on one shape and print the seed
//! benchmark's table row (GPU time from CUDA events after warm-up, and the
//! end-to-end time of a plain host loop).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cust::event::{Event, EventFlags};
use cust::memory::{CopyDestination, DeviceBuffer};
use cust::stream::{Stream, StreamFlags};
use streamtopk::cli::SamplingArgs;
use streamtopk::io::{self, Logits};
use streamtopk::{
    reference, DType, Graph, Logit, Sampler, SamplerConfig, Sampling, TopK, TopKConfig,
};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark streamtopk's exact top-k (or, with --sample, its fused sampler) on one [batch, vocab] shape"
)]
struct Args {
    /// Rows of logits (ignored with --input).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Row length (ignored with --input).
    #[arg(long, default_value_t = 50304)]
    vocab: usize,
    /// Values kept per row.
    #[arg(long = "top-k", default_value_t = 50)]
    top_k: usize,
    /// Element type of the generated logits (ignored with --input).
    #[arg(long, default_value = "bfloat16", value_parser = ["bfloat16", "float16", "float32"])]
    dtype: String,
    /// Timed calls.
    #[arg(long, default_value_t = 200)]
    iters: usize,
    /// Untimed calls before timing.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Seed of the generated standard-normal logits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Read logits from this safetensors file (tensor "logits", [batch, vocab]).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write "values" (f32) and "indices" (i64), [batch, k], to this safetensors file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Stage-2 pool the chunking aims for (default: $STREAMTOPK_TARGET_POOL, else the measured default plan).
    #[arg(long)]
    target_pool: Option<usize>,
    /// Also check the result against the CPU reference.
    #[arg(long)]
    check: bool,
    /// Print one JSON object instead of the table row.
    #[arg(long)]
    json: bool,
    /// Also time each stage and print its share.
    #[arg(long)]
    profile: bool,
    /// Time the fused sampler (nanochat's sample_next_token) instead of
    /// top-k: --top-k is the per-row top-k (0: off, the whole softmax);
    /// --output writes "tokens" (i64, [batch]). The sampling flags below
    /// apply with --sample.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

struct Timing {
    times: Times,
    stages_ms: Option<[f64; 2]>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("topk_benchmark: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The run's config, validated (without a GPU) before anything is generated or loaded.
fn config(
    args: &Args,
    batch: usize,
    vocab: usize,
    dtype: DType,
) -> Result<TopKConfig, Box<dyn std::error::Error>> {
    if args.iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    let config = TopKConfig {
        max_batch: batch,
        vocab,
        k: args.top_k,
        dtype,
        target_pool: args.target_pool,
    };
    config.plan()?;
    Ok(config)
}

/// The sampler's config and row parameters, validated without a GPU.
fn sample_config(
    args: &Args,
    batch: usize,
    vocab: usize,
    dtype: DType,
) -> Result<(SamplerConfig, Sampling), Box<dyn std::error::Error>> {
    if args.iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    Ok(args.sampling.sampler(batch, vocab, args.top_k, dtype)?)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let logits = match &args.input {
        Some(path) => io::read_logits(path)?,
        None => {
            let dtype = io::parse_dtype(&args.dtype)?;
            if args.sample {
                sample_config(args, args.batch, args.vocab, dtype)?;
            } else {
                config(args, args.batch, args.vocab, dtype)?;
            }
            Logits::randn(dtype, args.batch, args.vocab, args.seed)
        }
    };
    match (&logits, args.sample) {
        (Logits::BF16 { data, batch, vocab }, false) => bench(args, data, *batch, *vocab),
        (Logits::F16 { data, batch, vocab }, false) => bench(args, data, *batch, *vocab),
        (Logits::F32 { data, batch, vocab }, false) => bench(args, data, *batch, *vocab),
        (Logits::BF16 { data, batch, vocab }, true) => bench_sample(args, data, *batch, *vocab),
        (Logits::F16 { data, batch, vocab }, true) => bench_sample(args, data, *batch, *vocab),
        (Logits::F32 { data, batch, vocab }, true) => bench_sample(args, data, *batch, *vocab),
    }
}

/// Calls captured in the graph that times back-to-back calls.
const BACK_TO_BACK: usize = 20;

/// Per-call times of `call`, after `--warmup` untimed calls.
struct Times {
    /// CUDA-graph replays of a graph of one call (as the torch column
    /// measures it): includes the host's graph-launch rate.
    gpu_ms: f64,
    /// CUDA-graph replays of a graph of [`BACK_TO_BACK`] calls, per call:
    /// the GPU's time per call, host launch overhead amortised.
    b2b_ms: f64,
    /// A plain loop of call + synchronise.
    e2e_ms: f64,
    /// Host time to enqueue one call (a loop of calls, no synchronise).
    enqueue_ms: f64,
    /// The same loop with one synchronise at its end, per call (a plain
    /// loop: calls queue behind each other).
    loop_ms: f64,
}

/// GPU time per call from `--iters` replays of a graph of `calls` calls.
fn replay_ms(
    args: &Args,
    stream: &Stream,
    calls: usize,
    call: &mut impl FnMut(&Stream) -> streamtopk::Result<()>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let graph = Graph::capture(stream, |s| (0..calls).try_for_each(|_| call(s)))?;
    for _ in 0..args.warmup {
        graph.launch(stream)?;
    }
    let (start, stop) = (
        Event::new(EventFlags::DEFAULT)?,
        Event::new(EventFlags::DEFAULT)?,
    );
    start.record(stream)?;
    for _ in 0..args.iters {
        graph.launch(stream)?;
    }
    stop.record(stream)?;
    stop.synchronize()?;
    Ok(stop.elapsed_time_f32(&start)? as f64 / (args.iters * calls) as f64)
}

/// The [`Times`] of `call`.
fn time_calls(
    args: &Args,
    stream: &Stream,
    mut call: impl FnMut(&Stream) -> streamtopk::Result<()>,
) -> Result<Times, Box<dyn std::error::Error>> {
    for _ in 0..args.warmup {
        call(stream)?;
    }
    stream.synchronize()?;
    let gpu_ms = replay_ms(args, stream, 1, &mut call)?;
    let b2b_ms = replay_ms(args, stream, BACK_TO_BACK, &mut call)?;
    let per_call = |t0: Instant| t0.elapsed().as_secs_f64() * 1e3 / args.iters as f64;
    let t0 = Instant::now();
    for _ in 0..args.iters {
        call(stream)?;
        stream.synchronize()?;
    }
    let e2e_ms = per_call(t0);
    let t0 = Instant::now();
    for _ in 0..args.iters {
        call(stream)?;
    }
    let enqueue_ms = per_call(t0);
    stream.synchronize()?;
    let loop_ms = per_call(t0);
    Ok(Times {
        gpu_ms,
        b2b_ms,
        e2e_ms,
        enqueue_ms,
        loop_ms,
    })
}

/// GPU time (graph replay) and end-to-end time of the fused sampler.
fn bench_sample<T: Logit>(
    args: &Args,
    host: &[T],
    batch: usize,
    vocab: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let dtype: DType = <T::Kernel as streamtopk::kernels::element::Element>::DTYPE;
    let (config, row) = sample_config(args, batch, vocab, dtype)?;
    let kernels = streamtopk::load()?;
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None)?;
    let mut sampler = Sampler::new(&kernels, config)?;
    let params = sampler.params(&vec![row; batch])?;
    let input = DeviceBuffer::from_slice(host)?;
    let mut tokens = DeviceBuffer::<u32>::zeroed(batch)?;
    let Times {
        gpu_ms,
        b2b_ms,
        e2e_ms,
        enqueue_ms,
        loop_ms,
    } = time_calls(args, &stream, |s| {
        sampler.sample(s, &input, &params, &mut tokens)
    })?;
    let mut out = vec![0u32; batch];
    tokens.copy_to(&mut out[..])?;
    let checked = if args.check && args.sampling.temperature == 0.0 {
        let (_, argmax) = reference::topk(host, batch, vocab, 1);
        Some(argmax == out)
    } else {
        None
    };
    if let Some(path) = &args.output {
        io::write_tokens(path, &out)?;
    }
    let plan = sampler.plan();
    if args.json {
        let mut obj = serde_json::json!({
            "mode": "sample", "batch": batch, "vocab": vocab, "k": args.top_k, "dtype": dtype.torch_name(),
            "temperature": args.sampling.temperature, "top_p": args.sampling.top_p, "min_p": args.sampling.min_p,
            "iters": args.iters, "gpu_ms": gpu_ms, "gpu_b2b_ms": b2b_ms, "e2e_ms": e2e_ms, "enqueue_ms": enqueue_ms, "loop_ms": loop_ms,
            "chunks": plan.chunks, "chunk_len": plan.chunk_len, "threads": plan.threads, "cluster": plan.cluster, "filter": plan.filter,
        });
        if let Some(ok) = checked {
            obj["matches_reference"] = ok.into();
        }
        println!("{obj}");
    } else {
        println!("| Batch | Vocab | Top-k | temperature | top-p | min-p | dtype | sampler GPU (ms) | sampler GPU back-to-back (ms) | sampler end-to-end (ms) | sampler plain loop (ms) |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {batch} | {} | {} | {} | {} | {} | {} | {gpu_ms:.4} | {b2b_ms:.4} | {e2e_ms:.4} | {loop_ms:.4} |",
            io::thousands(vocab),
            args.top_k,
            args.sampling.temperature,
            args.sampling.top_p,
            args.sampling.min_p,
            dtype.torch_name()
        );
        if let Some(ok) = checked {
            println!("greedy tokens match the CPU argmax: {ok}");
        }
    }
    if checked == Some(false) {
        return Err("greedy tokens differ from the CPU argmax".into());
    }
    Ok(())
}

fn bench<T: Logit>(
    args: &Args,
    host: &[T],
    batch: usize,
    vocab: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let k = args.top_k;
    let dtype: DType = <T::Kernel as streamtopk::kernels::element::Element>::DTYPE;
    let config = config(args, batch, vocab, dtype)?;
    let kernels = streamtopk::load()?;
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None)?;
    let mut topk = TopK::new(&kernels, config)?;
    let input = DeviceBuffer::from_slice(host)?;
    let mut values = DeviceBuffer::<f32>::zeroed(batch * k)?;
    let mut indices = DeviceBuffer::<u32>::zeroed(batch * k)?;

    let times = time_calls(args, &stream, |s| {
        topk.run(s, &input, batch, &mut values, &mut indices)
    })?;

    let stages_ms = if args.profile {
        let marks = [
            Event::new(EventFlags::DEFAULT)?,
            Event::new(EventFlags::DEFAULT)?,
            Event::new(EventFlags::DEFAULT)?,
        ];
        let mut sums = [0f64; 2];
        for _ in 0..args.iters {
            topk.run_marked(
                &stream,
                &input,
                batch,
                &mut values,
                &mut indices,
                [&marks[0], &marks[1], &marks[2]],
            )?;
            marks[2].synchronize()?;
            sums[0] += marks[1].elapsed_time_f32(&marks[0])? as f64;
            sums[1] += marks[2].elapsed_time_f32(&marks[1])? as f64;
        }
        Some(sums.map(|s| s / args.iters as f64))
    } else {
        None
    };

    stream.synchronize()?;
    let mut v = vec![0f32; batch * k];
    let mut ix = vec![0u32; batch * k];
    values.copy_to(&mut v[..])?;
    indices.copy_to(&mut ix[..])?;
    let checked = if args.check {
        let (rv, ri) = reference::topk(host, batch, vocab, k);
        Some(reference::first_mismatch(&v, &ix, &rv, &ri).is_none())
    } else {
        None
    };
    if let Some(path) = &args.output {
        io::write_topk(path, &v, &ix, batch, k)?;
    }

    let timing = Timing { times, stages_ms };
    let plan = topk.plan();
    if args.json {
        let mut obj = serde_json::json!({
            "batch": batch, "vocab": vocab, "k": k, "dtype": dtype.torch_name(),
            "iters": args.iters, "gpu_ms": timing.times.gpu_ms, "gpu_b2b_ms": timing.times.b2b_ms, "e2e_ms": timing.times.e2e_ms, "enqueue_ms": timing.times.enqueue_ms, "loop_ms": timing.times.loop_ms,
            "chunks": plan.chunks, "chunk_len": plan.chunk_len, "pool": plan.pool(), "threads": plan.threads, "cluster": plan.cluster, "filter": plan.filter,
        });
        if let Some([s1, s2]) = timing.stages_ms {
            obj["stage1_ms"] = s1.into();
            obj["stage2_ms"] = s2.into();
        }
        if let Some(ok) = checked {
            obj["matches_reference"] = ok.into();
        }
        println!("{obj}");
    } else {
        println!("| Batch | Vocab | Top-k | dtype | streamtopk GPU (ms) | streamtopk GPU back-to-back (ms) | streamtopk end-to-end (ms) | streamtopk plain loop (ms) | chunks x len | pool |");
        println!("|-------|-------|-------|-------|---------------------|----------------------------------|----------------------------|----------------------------|--------------|------|");
        println!(
            "| {batch} | {} | {k} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} x {} | {} |",
            io::thousands(vocab),
            dtype.torch_name(),
            timing.times.gpu_ms,
            timing.times.b2b_ms,
            timing.times.e2e_ms,
            timing.times.loop_ms,
            plan.chunks,
            plan.chunk_len,
            plan.pool()
        );
        if let Some([s1, s2]) = timing.stages_ms {
            let total = s1 + s2;
            println!();
            println!("| Top-k | Total GPU time (ms/call) | Stage-1 kernel (ms) | Stage-2 kernel (ms) | Stage-2 share |");
            println!("|-------|--------------------------|---------------------|---------------------|---------------|");
            println!(
                "| {k} | {total:.4} | {s1:.4} | {s2:.4} | {:.0}% |",
                100.0 * s2 / total
            );
        }
        if let Some(ok) = checked {
            println!("matches CPU reference: {ok}");
        }
    }
    if checked == Some(false) {
        return Err("result differs from the CPU reference".into());
    }
    Ok(())
}
