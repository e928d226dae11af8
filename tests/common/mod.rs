//! Test inputs: the distributions the GPU tests sweep.
#![allow(dead_code)]

use std::sync::Arc;

use cust::stream::{Stream, StreamFlags};
use streamtopk::io::randn;
use streamtopk::{Kernels, Logit};

/// The module on device 0 and a non-blocking stream.
pub fn setup() -> (Arc<Kernels>, Stream) {
    let kernels = streamtopk::load().expect("load streamtopk on the GPU");
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None).expect("stream");
    (kernels, stream)
}

/// `values` rounded to `T`.
pub fn convert<T: Logit>(values: &[f32]) -> Vec<T> {
    values.iter().map(|&v| T::from_f32(v)).collect()
}

/// Shapes of logits the tests draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dist {
    Randn,
    /// Few distinct values: many ties everywhere.
    HeavyTies,
    AllEqual,
    Ascending,
    Descending,
    /// Standard normal with NaN, +inf and -inf sprinkled in.
    NanInf,
    /// Almost every value -inf.
    MostlyNegInf,
    /// The row's top values all sit in one short stretch.
    TopInOneChunk,
    /// Low values with a spike every [`SPIKE_STRIDE`] positions (of the
    /// row): a sample on that stride sees only spikes.
    Spikes,
}

/// See [`Dist::Spikes`]: the filter body's `SAMPLE` launch (512 threads,
/// 3 vectors a thread, evenly over the row's) reads the vectors at
/// multiples of this on rows of 393,216 elements, bf16 and f32 alike.
pub const SPIKE_STRIDE: usize = 256;

pub const ALL_DISTS: [Dist; 9] = [
    Dist::Randn,
    Dist::HeavyTies,
    Dist::AllEqual,
    Dist::Ascending,
    Dist::Descending,
    Dist::NanInf,
    Dist::MostlyNegInf,
    Dist::TopInOneChunk,
    Dist::Spikes,
];

/// Small deterministic generator for test decisions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// `batch * vocab` values (f32) of `dist`, `k` being the k the test asks for.
pub fn logits(dist: Dist, batch: usize, vocab: usize, k: usize, seed: u64) -> Vec<f32> {
    let n = batch * vocab;
    let mut rng = Rng::new(seed);
    match dist {
        Dist::Randn => randn(n, seed),
        Dist::HeavyTies => (0..n).map(|_| (rng.next() % 4) as f32 - 1.5).collect(),
        Dist::AllEqual => vec![0.75; n],
        Dist::Ascending => (0..n).map(|i| (i % vocab) as f32 * 0.01 - 100.0).collect(),
        Dist::Descending => (0..n).map(|i| 100.0 - (i % vocab) as f32 * 0.01).collect(),
        Dist::NanInf => randn(n, seed)
            .into_iter()
            .map(|v| match rng.next() % 64 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                _ => v,
            })
            .collect(),
        Dist::MostlyNegInf => randn(n, seed)
            .into_iter()
            .map(|v| {
                if rng.next() % 100 == 0 {
                    v
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect(),
        Dist::TopInOneChunk => {
            let mut v: Vec<f32> = randn(n, seed).into_iter().map(|x| x * 0.1 - 5.0).collect();
            for row in v.chunks_exact_mut(vocab) {
                let len = (2 * k).min(vocab);
                let start = rng.range(0, vocab - len);
                for (j, x) in row[start..start + len].iter_mut().enumerate() {
                    *x = 10.0 + (j % 7) as f32;
                }
            }
            v
        }
        Dist::Spikes => randn(n, seed)
            .into_iter()
            .enumerate()
            .map(|(i, x)| {
                if (i % vocab).is_multiple_of(SPIKE_STRIDE) {
                    10.0 + x
                } else {
                    x - 5.0
                }
            })
            .collect(),
    }
}
