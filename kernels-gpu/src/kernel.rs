//! The kernels' common body: stage 1 in every block, stage 2 in the last
//! block of each row to finish, in one launch; what becomes of each row's
//! sorted top k is the [`Rows`] implementation's (the top-k outputs, or a
//! sampled token, [`crate::sample`]).
//!
//! Contract (see [`TopKParams`]):
//! - grid `(chunks, batch)`, block `threads` (multiple of 32, 256..=1024);
//! - dynamic shared memory at least `Layout::new(chunk_len, size, k, chunks).bytes`;
//! - block `(c, r)` reads `input[r, c*chunk_len .. min(vocab, (c+1)*chunk_len))`
//!   once and sorts its top `min(k, len)` ([`crate::stage1`]). With one chunk
//!   per row that is the row's answer. Otherwise it writes them to
//!   `pool[r, c*k ..]`, and the block that finds it is the row's last to
//!   arrive (`arrivals[r]`, reset to zero by that block) merges the row
//!   ([`crate::merge`]);
//! - `p.mode` can split the stages into two launches (for timing them);
//! - the top-k kernel writes `values[r, 0..k]` (f32, descending) and
//!   `indices[r, 0..k]` (u32): torch.topk's order, NaN first, ties by lower index.
//!
//! The `*_cluster_*` entry points run the same [`Rows`] over
//! [`crate::cluster`]'s body instead (one cluster per row, no pool), the
//! `*_filter_*` ones over [`crate::filter`]'s (two launches).

use core::marker::PhantomData;

use crate::block::Scratch;
use crate::cluster::run_cluster;
use crate::device::{
    block_dim, block_idx_x, block_idx_y, fence, sync_threads, thread_idx, GlobalMut, Shared,
};
use crate::element::{unpack_sort_word, Bf16, Element, F16, F32};
use crate::filter::{run_filter, run_merge};
use crate::merge::merge;
use crate::params::{mode, ClusterLayout, FilterLayout, Layout, TopKParams};
use crate::sample::Sampler;
use crate::stage1::chunk_topk;

/// What a launch over logits of `E` does with the rows' top k.
pub trait Rows<E: Element> {
    /// Stage-1 extra work of block `(chunk, row)` after its top k is sorted
    /// (its raw elements are still in shared memory). Block-wide.
    #[inline(always)]
    fn chunk(&self, _row: u32, _chunk: u32, _addr: u64, _n: u32, _start: u32) {}
    /// Word `rank` of row `row`'s top k: each rank once, by any thread.
    fn emit(&self, row: u32, rank: u32, word: u64);
    /// After every `emit` of the row (and a barrier), in the block that
    /// emitted them. Block-wide.
    #[inline(always)]
    fn finish(&self, _row: u32) {}
    /// Whether `finish` does anything (spares the barrier before it).
    const FINISHES: bool = false;
    /// Where `emit` puts the words `finish` reads: `Some(offset)`, bytes
    /// into the emitting block's dynamic shared memory (word `rank` at
    /// `offset + 8 * rank`; the cluster body sends them to block 0's);
    /// `None`: outputs that any block may write.
    #[inline(always)]
    fn gathered(&self) -> Option<u32> {
        None
    }
}

/// The top-k kernel's outputs.
struct TopKOut<E> {
    values: GlobalMut<f32>,
    indices: GlobalMut<u32>,
    k: u32,
    element: PhantomData<E>,
}

impl<E: Element> TopKOut<E> {
    #[inline(always)]
    fn new(p: &TopKParams) -> Self {
        TopKOut {
            values: GlobalMut::new(p.values),
            indices: GlobalMut::new(p.indices),
            k: p.k,
            element: PhantomData,
        }
    }
}

impl<E: Element> Rows<E> for TopKOut<E> {
    #[inline(always)]
    fn emit(&self, row: u32, rank: u32, word: u64) {
        let (key, index) = unpack_sort_word(word);
        let at = row as u64 * self.k as u64 + rank as u64;
        self.values.set(at, E::key_to_f32(key));
        self.indices.set(at, index);
    }
}

/// Whether this block is the last of `blocks` to arrive at the counter
/// `arrivals[at]` (which that block resets to zero); after it, the last
/// block sees every global write the others made before they arrived.
/// One thread fences and counts for the block, between two barriers (the
/// pattern of a cooperative grid barrier: the fence is cumulative over the
/// block's writes ordered before it by the first barrier). Block-wide.
#[inline(always)]
pub fn last_to_arrive(arrivals: GlobalMut<u32>, at: u64, blocks: u32) -> bool {
    sync_threads();
    let last = Scratch::new().word();
    if thread_idx() == 0 {
        fence();
        let arrived = arrivals.fetch_add(at, 1) + 1;
        if arrived == blocks {
            arrivals.set(at, 0);
            fence();
        }
        last.set(0, (arrived == blocks) as u32);
    }
    sync_threads();
    last.get(0) != 0
}

/// Stage 1, then stage 2 in the row's last block, handing the rows to `rows`.
#[inline(always)]
pub fn run<E: Element, R: Rows<E>>(p: &TopKParams, layout: &Layout, rows: &R) {
    let chunk = block_idx_x();
    let row = block_idx_y();
    let tid = thread_idx();
    let emit = |rank: u32, word: u64| rows.emit(row, rank, word);
    let finish = || {
        if R::FINISHES {
            sync_threads();
            rows.finish(row);
        }
    };
    if p.mode == mode::STAGE2 {
        merge(p, row, layout, emit);
        finish();
        return;
    }

    let start = chunk * p.chunk_len;
    let n = if p.vocab - start < p.chunk_len {
        p.vocab - start
    } else {
        p.chunk_len
    };
    let addr = p.input + (row as u64 * p.vocab as u64 + start as u64) * E::SIZE as u64;
    let kept = chunk_topk::<E>(addr, n, start, p.k, layout);
    rows.chunk(row, chunk, addr, n, start);
    let candidates = Shared::<u64>::dynamic(layout.candidates);
    if p.chunks == 1 {
        let mut j = tid;
        while j < kept {
            emit(j, candidates.get(j));
            j += block_dim();
        }
        finish();
        return;
    }

    // Publish this chunk's list, then count the row's arrivals.
    let pool = GlobalMut::<u64>::new(p.pool);
    let base = (row as u64 * p.chunks as u64 + chunk as u64) * p.k as u64;
    let mut j = tid;
    while j < kept {
        pool.set(base + j as u64, candidates.get(j));
        j += block_dim();
    }
    if p.mode == mode::STAGE1 {
        return;
    }
    if !last_to_arrive(GlobalMut::new(p.arrivals), row as u64, p.chunks) {
        return;
    }
    merge(p, row, layout, emit);
    finish();
}

#[inline(always)]
fn topk<E: Element>(p: &TopKParams) {
    let layout = Layout::new(p.chunk_len, E::SIZE, p.k, p.chunks);
    run::<E, _>(p, &layout, &TopKOut::<E>::new(p));
}

macro_rules! kernels {
    ($($ty:ty: $topk:ident, $topk_cluster:ident, $topk_filter:ident, $topk_merge:ident, $sample:ident, $sample_cluster:ident);*) => {$(
        /// Top-k for one dtype (see the module doc).
        #[no_mangle]
        pub extern "ptx-kernel" fn $topk(p: TopKParams) {
            topk::<$ty>(&p);
        }

        /// Top-k for one dtype, a cluster per row (see [`crate::cluster`]).
        #[no_mangle]
        pub extern "ptx-kernel" fn $topk_cluster(p: TopKParams) {
            run_cluster::<$ty, _>(&p, &ClusterLayout::new(p.k), &TopKOut::<$ty>::new(&p));
        }

        /// Top-k for one dtype in two or three launches (see [`crate::filter`]).
        #[no_mangle]
        pub extern "ptx-kernel" fn $topk_filter(p: TopKParams) {
            let local = if mode::is_local(p.mode) { p.chunks } else { 0 };
            let layout = FilterLayout::new(p.k, local, p.rounds);
            run_filter::<$ty, _>(&p, &layout, &TopKOut::<$ty>::new(&p));
        }

        /// The filter body's merge launches for one dtype (`MERGE`,
        /// `MERGE_LOCAL`; see [`crate::filter`]), in a kernel of their own:
        /// their code apart from the appends' (whose register allocation
        /// under the filter kernels' cap it upset), under a cap of their
        /// own ([`crate::params::MERGE_MAX_REGISTERS`]).
        #[no_mangle]
        pub extern "ptx-kernel" fn $topk_merge(p: TopKParams) {
            let local = if mode::is_local(p.mode) { p.chunks } else { 0 };
            let layout = FilterLayout::new(p.k, local, p.rounds);
            run_merge::<$ty, _>(&p, &layout, &TopKOut::<$ty>::new(&p));
        }

        /// Sampling for one dtype (see [`crate::sample`]).
        #[no_mangle]
        pub extern "ptx-kernel" fn $sample(p: crate::params::SampleParams) {
            Sampler::<$ty>::run(&p);
        }

        /// Sampling for one dtype, a cluster per row (see [`crate::sample`]).
        #[no_mangle]
        pub extern "ptx-kernel" fn $sample_cluster(p: crate::params::SampleParams) {
            Sampler::<$ty>::run_cluster(&p);
        }
    )*};
}

kernels!(
    Bf16: topk_bf16, topk_cluster_bf16, topk_filter_bf16, topk_merge_bf16, sample_bf16, sample_cluster_bf16;
    F16: topk_f16, topk_cluster_f16, topk_filter_f16, topk_merge_f16, sample_f16, sample_cluster_f16;
    F32: topk_f32, topk_cluster_f32, topk_filter_f32, topk_merge_f32, sample_f32, sample_cluster_f32
);
