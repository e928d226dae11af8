//! `decode_loop`: the sampling step of an LLM decode loop, fed by a stream of
//! logits (seeded random ones, or rows of a safetensors file), with the
//! fused sampler; reports tokens/s and per-step latency.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cust::memory::{CopyDestination, DeviceBuffer};
use cust::stream::{Stream, StreamFlags};
use streamtopk::cli::SamplingArgs;
use streamtopk::io::{self, Logits};
use streamtopk::{DType, Logit, Sampler};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Run a decode loop's sampling step over a stream of logits and report tokens/s and per-step latency"
)]
struct Args {
    /// Sequences decoded together (rows per step).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Row length (ignored with --input).
    #[arg(long, default_value_t = 50304)]
    vocab: usize,
    /// Decode steps.
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Per-row top-k (0: off).
    #[arg(long = "top-k", default_value_t = 50)]
    top_k: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Seed of the generated logits (ignored with --input).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Element type of the generated logits (ignored with --input).
    #[arg(long, default_value = "bfloat16", value_parser = ["bfloat16", "float16", "float32"])]
    dtype: String,
    /// Distinct random logits tensors the loop cycles through (ignored with --input).
    #[arg(long, default_value_t = 8)]
    distinct: usize,
    /// Read the stream from this safetensors file (tensor "logits", [n, vocab]):
    /// step s samples rows (s * batch ..) mod n.
    #[arg(long)]
    input: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decode_loop: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.steps == 0 || args.distinct == 0 {
        return Err("--steps and --distinct must be at least 1".into());
    }
    let logits = match &args.input {
        Some(path) => io::read_logits(path)?,
        None => {
            let dtype = io::parse_dtype(&args.dtype)?;
            let n = args
                .batch
                .checked_mul(args.distinct)
                .ok_or("--batch * --distinct overflows")?;
            args.sampling
                .sampler(args.batch, args.vocab, args.top_k, dtype)?;
            Logits::randn(dtype, n, args.vocab, args.seed)
        }
    };
    match &logits {
        Logits::BF16 { data, batch, vocab } => decode(args, data, *batch, *vocab),
        Logits::F16 { data, batch, vocab } => decode(args, data, *batch, *vocab),
        Logits::F32 { data, batch, vocab } => decode(args, data, *batch, *vocab),
    }
}

fn decode<T: Logit>(
    args: &Args,
    host: &[T],
    rows: usize,
    vocab: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let dtype: DType = <T::Kernel as streamtopk::kernels::element::Element>::DTYPE;
    let batch = args.batch;
    if rows < batch {
        return Err(format!("the input has {rows} rows, fewer than --batch {batch}").into());
    }
    let kernels = streamtopk::load()?;
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None)?;
    let (config, row) = args.sampling.sampler(batch, vocab, args.top_k, dtype)?;
    let mut sampler = Sampler::new(&kernels, config)?;
    let params = sampler.params(&vec![row; batch])?;
    let input = DeviceBuffer::from_slice(host)?;
    let mut tokens = DeviceBuffer::<u32>::zeroed(batch)?;
    let mut out = vec![0u32; batch];
    let groups = rows / batch;
    let mut latencies = Vec::with_capacity(args.steps);
    let mut checksum = 0u64;
    let start = Instant::now();
    for step in 0..args.steps {
        let first = (step % groups) * batch * vocab;
        let slice = input.index(first..first + batch * vocab);
        let t0 = Instant::now();
        sampler.sample(&stream, &slice, &params, &mut tokens)?;
        stream.synchronize()?;
        tokens.copy_to(&mut out[..])?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
        checksum = out
            .iter()
            .fold(checksum, |c, &t| c.wrapping_mul(31).wrapping_add(t as u64));
        if !args.quiet && (step + 1) % (args.steps / 100).max(1) == 0 {
            let done = (step + 1) * 40 / args.steps;
            eprint!(
                "\r[{}{}] {}/{} steps",
                "#".repeat(done),
                " ".repeat(40 - done),
                step + 1,
                args.steps
            );
            std::io::stderr().flush().ok();
        }
    }
    let total = start.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!();
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    println!(
        "{} steps x batch {batch}, vocab {}, {}: {:.0} tokens/s; per step (sample + copy back): mean {mean:.1} us, p50 {:.1} us, p99 {:.1} us; last tokens {:?}, checksum {checksum:#x}",
        args.steps,
        io::thousands(vocab),
        dtype.torch_name(),
        (args.steps * batch) as f64 / total,
        pct(0.5),
        pct(0.99),
        &out[..out.len().min(8)],
    );
    Ok(())
}
