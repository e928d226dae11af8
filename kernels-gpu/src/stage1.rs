//! Stage 1: each chunk of a row hands its local top-min(k, len) to stage 2.
//!
//! Contract (see [`Stage1Params`]):
//! - grid `(chunks, batch)`, block `threads` (multiple of 32, 256..=1024);
//! - dynamic shared memory `stage1_smem_bytes(chunk_len)`: scratch header,
//!   then one key per chunk element;
//! - block `(c, r)` reads `input[r, c*chunk_len .. min(vocab, (c+1)*chunk_len))`
//!   once (16-byte loads where aligned, scalar at the edges), and writes
//!   `chunk_candidates(len, k)` (key, index) pairs at
//!   `cand_*[r * pool + c * chunk_candidates(chunk_len, k) ..]`, in index order.
//!   Ties at the chunk's k-th key go to the lowest indices, so stage 2 sees every
//!   element that can still be in the row's top k.

use crate::block::{compact, radix_select, Scratch};
use crate::device::{
    block_dim, block_idx_x, block_idx_y, load_nc_v4, thread_idx, Global, GlobalMut, Shared,
};
use crate::element::{Bf16, Element, F16, F32};
use crate::params::{chunk_candidates, smem, Stage1Params, RADIX_BITS};

/// Loads of 16 bytes each thread has in flight.
const UNROLL: u32 = 4;

/// Calls `visit(i, bits, active)` for the `n` elements of type `E` at device
/// address `addr`, block-strided, so that all lanes of a warp call it
/// together (`active = false` past the end).
#[inline(always)]
pub fn for_each_element<E: Element, F: FnMut(u32, u32, bool)>(addr: u64, n: u32, mut visit: F) {
    let tid = thread_idx();
    let threads = block_dim();
    let per_vec = 16 / E::SIZE;
    let misalign = (16 - (addr % 16) as u32) % 16 / E::SIZE;
    let head = if misalign < n { misalign } else { n };
    let vectors = (n - head) / per_vec;
    let tail_start = head + vectors * per_vec;
    let scalars = Global::<u16>::new(addr);
    let words = Global::<u32>::new(addr);
    let scalar = |i: u32| {
        if E::SIZE == 2 {
            scalars.get(i) as u32
        } else {
            words.get(i)
        }
    };

    // Head (before the first 16-byte boundary) and tail (after the last) together.
    let edge = head + (n - tail_start);
    let mut e = 0;
    while e < edge {
        let j = e + tid;
        let active = j < edge;
        let i = if j < head { j } else { tail_start + j - head };
        visit(i, if active { scalar(i) } else { 0 }, active);
        e += threads;
    }

    // Aligned middle: UNROLL 16-byte loads in flight per thread, all issued
    // before the first is used.
    let first = addr + (head * E::SIZE) as u64;
    let load = |v: u32| {
        if v < vectors {
            load_nc_v4(first + 16 * v as u64)
        } else {
            [0; 4]
        }
    };
    let mut process = |v: u32, data: [u32; 4]| {
        let active = v < vectors;
        let base = head + v * per_vec;
        for (w, word) in (0u32..).zip(data) {
            if E::SIZE == 2 {
                visit(base + 2 * w, word & 0xffff, active);
                visit(base + 2 * w + 1, word >> 16, active);
            } else {
                visit(base + w, word, active);
            }
        }
    };
    let mut v = tid;
    let rounds = vectors.div_ceil(UNROLL * threads);
    for _ in 0..rounds {
        let batch = [
            load(v),
            load(v + threads),
            load(v + 2 * threads),
            load(v + 3 * threads),
        ];
        process(v, batch[0]);
        process(v + threads, batch[1]);
        process(v + 2 * threads, batch[2]);
        process(v + 3 * threads, batch[3]);
        v += UNROLL * threads;
    }
}

#[inline(always)]
fn stage1<E: Element>(p: &Stage1Params) {
    let chunk = block_idx_x();
    let row = block_idx_y();
    let start = chunk * p.chunk_len;
    let n = if p.vocab - start < p.chunk_len {
        p.vocab - start
    } else {
        p.chunk_len
    };
    let scratch = Scratch::new();
    let keys = Shared::<u32>::dynamic(smem::HEADER_BYTES);

    scratch.clear_histogram();
    crate::device::sync_threads();
    let row_start = row as u64 * p.vocab as u64 + start as u64;
    let addr = p.input + row_start * E::SIZE as u64;
    for_each_element::<E, _>(addr, n, |i, bits, active| {
        let key = E::key(bits);
        if active {
            keys.set(i, key);
        }
        scratch.count(key, active, 0, 0, 32 - RADIX_BITS);
    });
    crate::device::sync_threads();

    let sel = radix_select(scratch, keys, n, p.k, E::KEY_BITS);
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
