//! The top-k kernel: stage 1 in every block, stage 2 in the last block of
//! each row to finish, in one launch.
//!
//! Contract (see [`TopKParams`]):
//! - grid `(chunks, batch)`, block `threads` (multiple of 32, 256..=1024);
//! - dynamic shared memory `Layout::new(chunk_len, size, k, chunks).bytes`;
//! - block `(c, r)` reads `input[r, c*chunk_len .. min(vocab, (c+1)*chunk_len))`
//!   once and sorts its top `min(k, len)` ([`crate::stage1`]). With one chunk
//!   per row that is the row's answer. Otherwise it writes them to
//!   `pool[r, c*k ..]`, and the block that finds it is the row's last to
//!   arrive (`arrivals[r]`, reset to zero by that block) merges the row
//!   ([`crate::merge`]);
//! - `p.mode` can split the stages into two launches (for timing them);
//! - writes `values[r, 0..k]` (f32, descending) and `indices[r, 0..k]` (u32):
//!   torch.topk's order, NaN first, ties by lower index.

use crate::block::Scratch;
use crate::device::{
    block_dim, block_idx_x, block_idx_y, fence, sync_threads, thread_idx, GlobalMut, Shared,
};
use crate::element::{unpack_sort_word, Bf16, Element, F16, F32};
use crate::merge::merge;
use crate::params::{mode, Layout, TopKParams};
use crate::stage1::chunk_topk;

#[inline(always)]
fn topk<E: Element>(p: &TopKParams) {
    let chunk = block_idx_x();
    let row = block_idx_y();
    let tid = thread_idx();
    let layout = Layout::new(p.chunk_len, E::SIZE, p.k, p.chunks);
    let values = GlobalMut::<f32>::new(p.values);
    let indices = GlobalMut::<u32>::new(p.indices);
    let out = row as u64 * p.k as u64;
    let emit = |rank: u32, word: u64| {
        let (key, index) = unpack_sort_word(word);
        values.set(out + rank as u64, E::key_to_f32(key));
        indices.set(out + rank as u64, index);
    };
    if p.mode == mode::STAGE2 {
        merge(p, row, &layout, emit);
        return;
    }

    let start = chunk * p.chunk_len;
    let n = if p.vocab - start < p.chunk_len {
        p.vocab - start
    } else {
        p.chunk_len
    };
    let addr = p.input + (row as u64 * p.vocab as u64 + start as u64) * E::SIZE as u64;
    let kept = chunk_topk::<E>(addr, n, start, p.k, &layout);
    let candidates = Shared::<u64>::dynamic(layout.candidates);
    if p.chunks == 1 {
        let mut j = tid;
        while j < kept {
            emit(j, candidates.get(j));
            j += block_dim();
        }
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
    fence();
    sync_threads();
    let last = Scratch::new().word();
    if tid == 0 {
        let arrivals = GlobalMut::<u32>::new(p.arrivals);
        let arrived = arrivals.fetch_add(row as u64, 1) + 1;
        if arrived == p.chunks {
            arrivals.set(row as u64, 0);
        }
        last.set(0, (arrived == p.chunks) as u32);
    }
    sync_threads();
    if last.get(0) == 0 {
        return;
    }
    fence();
    merge(p, row, &layout, emit);
}

macro_rules! topk_kernel {
    ($name:ident, $ty:ty) => {
        /// Top-k for one dtype (see the module doc).
        #[no_mangle]
        pub extern "ptx-kernel" fn $name(p: TopKParams) {
            topk::<$ty>(&p);
        }
    };
}

topk_kernel!(topk_bf16, Bf16);
topk_kernel!(topk_f16, F16);
topk_kernel!(topk_f32, F32);
