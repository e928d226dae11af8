//! Stage 2: merge a row's candidates into its sorted top k.
//!
//! Contract (see [`Stage2Params`]):
//! - grid `(batch)`, block `threads` (multiple of 32, 256..=1024);
//! - dynamic shared memory `Layout::stage2(pool, k).bytes`: scratch header,
//!   the row's candidate keys, their group maxima, a `u64` sort buffer of
//!   `sort_width(k)` words;
//! - block `r` reads `cand_keys[r * pool .. (r + 1) * pool]` (stage 1's output,
//!   equal keys in index order) into shared memory, selects the top `k` with
//!   the same filtered radix select as stage 1, reads their indices, sorts them (key descending, index ascending) with a
//!   bitonic sort in shared memory and writes `values[r, ..k]` (f32) and
//!   `indices[r, ..k]` (u32).

use crate::block::{compact, floor_from_group_maxima, radix_select, Scratch};
use crate::device::{block_dim, block_idx_x, sync_threads, thread_idx, Global, GlobalMut, Shared};
use crate::element::{sort_word, unpack_sort_word, Bf16, Element, F16, F32};
use crate::load::load_keys;
use crate::params::{sort_width, Layout, Stage2Params};

/// Sorts `buf[0..width]` (`width` a power of two) descending. Ends with a barrier.
#[inline(always)]
fn bitonic_sort_desc(buf: Shared<u64>, width: u32) {
    let mut size = 2;
    while size <= width {
        let mut stride = size / 2;
        while stride > 0 {
            let mut t = thread_idx();
            while t < width / 2 {
                let i = 2 * t - (t & (stride - 1));
                let j = i + stride;
                let (a, b) = (buf.get(i), buf.get(j));
                if (a < b) == (i & size == 0) {
                    buf.set(i, b);
                    buf.set(j, a);
                }
                t += block_dim();
            }
            sync_threads();
            stride /= 2;
        }
        size *= 2;
    }
}

#[inline(always)]
fn stage2<E: Element>(p: &Stage2Params) {
    let row = block_idx_x();
    let tid = thread_idx();
    let layout = Layout::stage2(p.pool, p.k);
    let scratch = Scratch::new();
    let keys = Shared::<u32>::dynamic(layout.keys);
    let maxima = Shared::<u32>::dynamic(layout.maxima);
    let buf = Shared::<u64>::dynamic(layout.sort);
    let width = sort_width(p.k);
    let row_off = row as u64 * p.pool as u64;
    let idx = Global::<u32>::new(p.cand_idx).offset(row_off);

    // Padding sorts last: no candidate has key 0 (the NaN key is the largest
    // and -inf maps above 0).
    let mut j = p.k + tid;
    while j < width {
        buf.set(j, 0);
        j += block_dim();
    }
    let addr = p.cand_keys + 4 * row_off;
    let groups = load_keys(addr, p.pool, 4, |key| key, keys, maxima);
    sync_threads();

    let floor = floor_from_group_maxima(scratch, maxima, groups, p.k, E::KEY_BITS);
    scratch.count_top_digit(keys, p.pool, floor);
    let sel = radix_select(scratch, keys, p.pool, p.k, E::KEY_BITS, floor);
    compact(scratch, keys, p.pool, sel, |i, slot, key| buf.set(slot, sort_word(key, idx.get(i))));
    bitonic_sort_desc(buf, width);

    let values = GlobalMut::<f32>::new(p.values);
    let indices = GlobalMut::<u32>::new(p.indices);
    let out = row as u64 * p.k as u64;
    let mut j = tid;
    while j < p.k {
        let (key, index) = unpack_sort_word(buf.get(j));
        values.set(out + j as u64, E::key_to_f32(key));
        indices.set(out + j as u64, index);
        j += block_dim();
    }
}

macro_rules! stage2_kernel {
    ($name:ident, $ty:ty) => {
        /// Stage 2 for one dtype (see the module doc).
        #[no_mangle]
        pub extern "ptx-kernel" fn $name(p: Stage2Params) {
            stage2::<$ty>(&p);
        }
    };
}

stage2_kernel!(topk_stage2_bf16, Bf16);
stage2_kernel!(topk_stage2_f16, F16);
stage2_kernel!(topk_stage2_f32, F32);
