//! Stage 1: each chunk of a row hands its local top-min(k, len) to stage 2.
//!
//! Contract (see [`Stage1Params`]):
//! - grid `(chunks, batch)`, block `threads` (multiple of 32, 256..=1024);
//! - dynamic shared memory `Layout::stage1(chunk_len, size).bytes`: scratch
//!   header, one key per chunk element, one maximum per 16-byte group;
//! - block `(c, r)` reads `input[r, c*chunk_len .. min(vocab, (c+1)*chunk_len))`
//!   once (16-byte loads where aligned, scalar at the edges), and writes
//!   `chunk_candidates(len, k)` (key, index) pairs at
//!   `cand_*[r * pool + c * chunk_candidates(chunk_len, k) ..]`, in index order.
//!   Ties at the chunk's k-th key go to the lowest indices, so stage 2 sees every
//!   element that can still be in the row's top k.
//!
//! The k-th largest group maximum is a floor below which no key can be in
//! the chunk's top k; the radix select only counts keys above it.

use crate::block::{compact, floor_from_group_maxima, radix_select, Scratch};
use crate::device::{block_idx_x, block_idx_y, sync_threads, GlobalMut, Shared};
use crate::element::{Bf16, Element, F16, F32};
use crate::load::load_keys;
use crate::params::{chunk_candidates, Layout, Stage1Params};

#[inline(always)]
fn stage1<E: Element>(p: &Stage1Params) {
    let chunk = block_idx_x();
    let row = block_idx_y();
    let start = chunk * p.chunk_len;
    let n = if p.vocab - start < p.chunk_len { p.vocab - start } else { p.chunk_len };
    let layout = Layout::stage1(p.chunk_len, E::SIZE);
    let scratch = Scratch::new();
    let keys = Shared::<u32>::dynamic(layout.keys);
    let maxima = Shared::<u32>::dynamic(layout.maxima);

    let row_start = row as u64 * p.vocab as u64 + start as u64;
    let addr = p.input + row_start * E::SIZE as u64;
    let groups = load_keys(addr, n, E::SIZE, E::key, keys, maxima);
    sync_threads();

    let k = if p.k < n { p.k } else { n };
    let floor = floor_from_group_maxima(scratch, maxima, groups, k, E::KEY_BITS);
    scratch.count_top_digit(keys, n, floor);
    let sel = radix_select(scratch, keys, n, k, E::KEY_BITS, floor);
    let out = row as u64 * p.pool as u64 + (chunk * chunk_candidates(p.chunk_len, p.k)) as u64;
    let cand_keys = GlobalMut::<u32>::new(p.cand_keys);
    let cand_idx = GlobalMut::<u32>::new(p.cand_idx);
    compact(scratch, keys, n, sel, |i, slot, key| {
        cand_keys.set(out + slot as u64, key);
        cand_idx.set(out + slot as u64, start + i);
    });
}

macro_rules! stage1_kernel {
    ($name:ident, $ty:ty) => {
        /// Stage 1 for one dtype (see the module doc).
        #[no_mangle]
        pub extern "ptx-kernel" fn $name(p: Stage1Params) {
            stage1::<$ty>(&p);
        }
    };
}

stage1_kernel!(topk_stage1_bf16, Bf16);
stage1_kernel!(topk_stage1_f16, F16);
stage1_kernel!(topk_stage1_f32, F32);
