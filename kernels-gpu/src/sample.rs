//! Sampling: nanochat's `sample_next_token` (temperature, top-k, softmax,
//! multinomial draw) plus top-p and min-p, in the top-k kernel's launch.
//!
//! Contract ([`SampleParams`]): grid, block and stages as the top-k kernel
//! (`sample_<dtype>`, [`crate::kernel`]) or the cluster top-k kernel
//! (`sample_cluster_<dtype>`, [`crate::cluster`]; no row with top-k off)
//! with `k = max_k`; shared memory [`SampleLayout`]. Per row `r`, with
//! temperature `t`, top-k `kr`, top-p `p`, min-p `q`:
//! - the row's first word is NaN, or `t == 0`: the token is the top-1 index
//!   (`torch.argmax`: NaN first, ties to the lower index);
//! - `kr <= max_k`: the allowed tokens are the first `m` of the row's
//!   top-`kr` list (torch.topk's order), `m` the least of `kr`; the
//!   shortest prefix whose mass `sum exp((v - v0) / t)` reaches `p` of the
//!   list's mass, extended over ties of its last value; and the count of
//!   values with `exp((v - v0) / t) >= q`. One uniform `u` (Philox, counter
//!   `(ROW_DRAW, r, offset)`) picks the first position whose running mass
//!   exceeds `u` times the prefix's mass. Values equal to `v0` weigh 1 (a
//!   row topped by +inf draws among its +inf values, one of all -inf among
//!   all);
//! - `kr == TOP_K_OFF` (`p == 1`, `q == 0`): a draw from the softmax of the
//!   whole row by the Gumbel-max trick, `argmax v / t + G`, `G` from
//!   Philox counter `(index / 4, r, offset)` ([`gumbel`]); +inf values outrank finite ones
//!   and draw among themselves by `G` alone. Each stage-1 block writes its
//!   chunk's winner to `best[r, chunk]`, the row's last block takes the best;
//! - writes `tokens[r]`; the launch's last row to finish advances `offset`.

use core::marker::PhantomData;

use crate::block::{max_u64, warp_exclusive_sum_f32, warp_sum};
use crate::cluster::run_cluster;
use crate::device::{
    ballot, block_dim, block_idx_y, exp2, grid_dim_y, lane, log2, shfl_idx, thread_idx, warp,
    Global, GlobalMut, Shared,
};
use crate::element::{unpack_sort_word, Element, F32, NAN_KEY};
use crate::kernel::{run, Rows};
use crate::load::{Groups, Raw};
use crate::params::{ClusterLayout, Layout, SampleLayout, SampleParams, TOP_K_OFF};
use crate::philox::{draw, uniform, ROW_DRAW};

const LOG2_E: f32 = core::f32::consts::LOG2_E;
const LN_2: f32 = core::f32::consts::LN_2;

/// The sampling launch's per-block state.
pub struct Sampler<E> {
    p: SampleParams,
    layout: SampleLayout,
    /// Where the top-k body keeps a chunk's raw elements (chunked body).
    raw: u32,
    offset: u64,
    /// The block's row's settings, loaded as the block starts.
    row: RowSettings,
    element: PhantomData<E>,
}

/// One row's sampling settings ([`SampleParams`]' per-row arrays).
#[derive(Clone, Copy)]
struct RowSettings {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
}

/// A standard Gumbel variate `-ln E`, `E = -ln(1 - w)` exponential, from
/// 32 random bits `w`. For small `w` (the winners' side: large `G`) `E` is
/// its series, so the tail keeps 32-bit resolution instead of a uniform's
/// 24 bits near 1.
#[inline(always)]
fn gumbel(bits: u32) -> f32 {
    let w = (bits as f32 + 0.5) * (1.0 / 4_294_967_296.0);
    let e = if w < 1.0 / 128.0 {
        w * (1.0 + w * (0.5 + w * (1.0 / 3.0)))
    } else {
        -LN_2 * log2(1.0 - w)
    };
    -LN_2 * log2(e)
}

/// Gumbel-max word of the element with key `key` at row index `index`:
/// +inf flag, then the score's order key, then the inverted index (ties to
/// the lower index). Zero for NaN (the row's NaN is handled before).
#[inline(always)]
fn gumbel_word<E: Element>(key: u32, index: u32, bits: u32, inv_t: f32) -> u64 {
    if key == NAN_KEY {
        return 0;
    }
    let v = E::key_to_f32(key);
    let g = gumbel(bits);
    let (inf, score) = if v == f32::INFINITY {
        (1u64, g)
    } else {
        (0, v * inv_t + g)
    };
    inf << 63 | (F32::key(score.to_bits()) as u64) << 31 | (!index & 0x7fff_ffff) as u64
}

impl<E: Element> Sampler<E> {
    /// The state over the top-k body's shared memory of `base` bytes.
    #[inline(always)]
    fn new(p: &SampleParams, base: u32, raw: u32) -> Self {
        let row = block_idx_y();
        Sampler::<E> {
            p: *p,
            layout: SampleLayout::after(base, p.topk.k),
            raw,
            offset: GlobalMut::<u64>::new(p.offset).get_cg(0),
            row: RowSettings {
                temperature: Global::<f32>::new(p.temperature).get(row),
                top_k: Global::<u32>::new(p.top_k).get(row),
                top_p: Global::<f32>::new(p.top_p).get(row),
                min_p: Global::<f32>::new(p.min_p).get(row),
            },
            element: PhantomData,
        }
    }

    /// The kernel body over the chunked top-k.
    #[inline(always)]
    pub fn run(p: &SampleParams) {
        let t = &p.topk;
        let layout = Layout::new(t.chunk_len, E::SIZE, t.k, t.chunks);
        run::<E, _>(t, &layout, &Self::new(p, layout.bytes, layout.raw));
    }

    /// The kernel body over the cluster top-k (no row with top-k off).
    #[inline(always)]
    pub fn run_cluster(p: &SampleParams) {
        let layout = ClusterLayout::new(p.topk.k);
        run_cluster::<E, _>(&p.topk, &layout, &Self::new(p, layout.bytes, 0));
    }

    /// Whether the block's row draws from its whole softmax (Gumbel-max).
    #[inline(always)]
    fn whole_row(&self) -> bool {
        self.row.temperature > 0.0 && self.row.top_k == TOP_K_OFF
    }

    /// The token of a top-k row: its allowed prefix and the inverse-CDF
    /// draw, by one warp (no block barrier), returned to every lane.
    ///
    /// Lane `l` owns the positions `[l * per, (l + 1) * per)`, `per =
    /// ceil(kr / 32)`: it keeps their running weight sums in `mass` (read
    /// back by it alone), so position `j`'s prefix mass is its lane's
    /// exclusive scan plus `mass[j]`, the same additions in every body.
    #[inline(always)]
    fn from_list(&self, row: u32) -> u32 {
        let sorted = Shared::<u64>::dynamic(self.layout.sorted);
        let mass = Shared::<f32>::dynamic(self.layout.mass);
        let RowSettings {
            temperature,
            top_k: kk,
            top_p,
            min_p,
        } = self.row;
        let key = |j: u32| unpack_sort_word(sorted.get(j)).0;
        let v0 = E::key_to_f32(key(0));
        let inv_t = 1.0 / temperature;
        let per = kk.div_ceil(32);
        let first = (lane() * per).min(kk);
        let last = (first + per).min(kk);
        // The draw depends on no data: started before the loads.
        let u = uniform(draw(self.p.seed, self.offset, row, ROW_DRAW)[0]);
        // The weights' running sums, and how many weights min-p keeps.
        let (mut run, mut kept) = (0.0f32, 0);
        for j in first..last {
            let v = E::key_to_f32(key(j));
            let w = if v == v0 {
                1.0
            } else {
                exp2((v - v0) * inv_t * LOG2_E)
            };
            kept += (w >= min_p) as u32;
            run += w;
            mass.set(j, run);
        }
        let (before, list_mass) = warp_exclusive_sum_f32(run);
        let prefix = |j: u32| before + mass.get(j);
        // Top-p keeps every value at least the one where the mass reaches p.
        let m_p = if top_p < 1.0 {
            let target = top_p * list_mass;
            let below = warp_sum((first..last).map(|j| (prefix(j) < target) as u32).sum());
            let edge = key(below);
            warp_sum((first..last).map(|j| (key(j) >= edge) as u32).sum())
        } else {
            kk
        };
        let kept = if min_p > 0.0 { warp_sum(kept) } else { kk };
        let m = kk.min(m_p).min(kept).max(1);
        let end = last.min(m);
        let owner = (m - 1) / per;
        let own = if lane() == owner { prefix(m - 1) } else { 0.0 };
        let total = f32::from_bits(shfl_idx(own.to_bits(), owner));
        // The first position whose prefix exceeds the pick, else the first
        // that reaches the total (the last with weight); lanes look in
        // their own positions below m.
        let pick = u * total;
        let (mut above, mut reach) = (end, end);
        for j in (first..end).rev() {
            let y = prefix(j);
            if y > pick {
                above = j;
            }
            if y >= total {
                reach = j;
            }
        }
        let (hits, reached) = (ballot(above < end), ballot(reach < end));
        let at = if hits != 0 {
            shfl_idx(above, hits.trailing_zeros())
        } else if reached != 0 {
            shfl_idx(reach, reached.trailing_zeros())
        } else {
            m - 1
        };
        unpack_sort_word(sorted.get(at)).1
    }
}

impl<E: Element> Rows<E> for Sampler<E> {
    const FINISHES: bool = true;

    #[inline(always)]
    fn chunk(&self, row: u32, chunk: u32, addr: u64, n: u32, start: u32) {
        if !self.whole_row() {
            return;
        }
        let groups = Groups::new(addr, n, E::SIZE);
        let raw = Raw::new(self.raw);
        let inv_t = 1.0 / self.row.temperature;
        let end = start + n;
        let mut best = 0u64;
        // Quads of row indices [4q, 4q + 4): one Philox call each.
        let mut q = start / 4 + thread_idx();
        while q * 4 < end {
            let bits = draw(self.p.seed, self.offset, row, q);
            let consider = |i: u32, b: u32, best: u64| {
                if i >= start && i < end {
                    let key = raw.key::<E>(groups, i - start);
                    best.max(gumbel_word::<E>(key, i, b, inv_t))
                } else {
                    best
                }
            };
            best = consider(q * 4, bits[0], best);
            best = consider(q * 4 + 1, bits[1], best);
            best = consider(q * 4 + 2, bits[2], best);
            best = consider(q * 4 + 3, bits[3], best);
            q += block_dim();
        }
        let best = max_u64(best);
        if thread_idx() == 0 {
            let at = row as u64 * self.p.topk.chunks as u64 + chunk as u64;
            GlobalMut::<u64>::new(self.p.best).set(at, best);
        }
    }

    #[inline(always)]
    fn emit(&self, _row: u32, rank: u32, word: u64) {
        Shared::<u64>::dynamic(self.layout.sorted).set(rank, word);
    }

    #[inline(always)]
    fn gathered(&self) -> Option<u32> {
        Some(self.layout.sorted)
    }

    /// By warp 0 (the others return at once): the token, then lane 0
    /// writes it and, as the launch's last row (no atomic for one row),
    /// advances the offset.
    #[inline(always)]
    fn finish(&self, row: u32) {
        if warp() != 0 {
            return;
        }
        let sorted = Shared::<u64>::dynamic(self.layout.sorted);
        let (key0, index0) = unpack_sort_word(sorted.get(0));
        let token = if key0 == NAN_KEY || self.row.temperature <= 0.0 {
            index0
        } else if self.row.top_k == TOP_K_OFF {
            let best = GlobalMut::<u64>::new(self.p.best);
            let base = row as u64 * self.p.topk.chunks as u64;
            let mut w = 0;
            let mut c = 0;
            while c < self.p.topk.chunks {
                w = w.max(best.get_cg(base + c as u64));
                c += 1;
            }
            !(w as u32) & 0x7fff_ffff
        } else {
            self.from_list(row)
        };
        if lane() == 0 {
            GlobalMut::<u32>::new(self.p.tokens).set(row as u64, token);
            let done = GlobalMut::<u32>::new(self.p.rows_done);
            if grid_dim_y() == 1 || done.fetch_add(0, 1) + 1 == grid_dim_y() {
                done.set(0, 0);
                GlobalMut::<u64>::new(self.p.offset).set(0, self.offset + 1);
            }
        }
    }
}
