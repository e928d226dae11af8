//! The device layer: the only place in the kernels with `unsafe`.
//!
//! Thread/block indices, barriers (block and cluster), warp votes and
//! shuffles, dynamic shared memory (the block's own and, through
//! distributed shared memory, its cluster peers'), read-only global loads
//! and shared-memory atomics, each a thin
//! wrapper over one PTX instruction.

use core::arch::asm;
use core::arch::nvptx;

/// Index of this thread in its block (x).
#[inline(always)]
pub fn thread_idx() -> u32 {
    // SAFETY: reads a special register.
    unsafe { nvptx::_thread_idx_x() }
}

/// Threads in this block (x).
#[inline(always)]
pub fn block_dim() -> u32 {
    // SAFETY: reads a special register.
    unsafe { nvptx::_block_dim_x() }
}

/// Block index (x).
#[inline(always)]
pub fn block_idx_x() -> u32 {
    // SAFETY: reads a special register.
    unsafe { nvptx::_block_idx_x() }
}

/// Block index (y).
#[inline(always)]
pub fn block_idx_y() -> u32 {
    // SAFETY: reads a special register.
    unsafe { nvptx::_block_idx_y() }
}

/// Blocks in the grid (y).
#[inline(always)]
pub fn grid_dim_y() -> u32 {
    // SAFETY: reads a special register.
    unsafe { nvptx::_grid_dim_y() }
}

/// Lane of this thread in its warp.
#[inline(always)]
pub fn lane() -> u32 {
    thread_idx() & 31
}

/// Warp of this thread in its block.
#[inline(always)]
pub fn warp() -> u32 {
    thread_idx() >> 5
}

/// Block-wide barrier (`bar.sync 0`); also orders shared-memory accesses.
#[inline(always)]
pub fn sync_threads() {
    // SAFETY: every kernel here reaches its barriers with all threads of the block.
    unsafe { nvptx::_syncthreads() }
}

/// Rank of this block in its thread-block cluster.
#[inline(always)]
pub fn cluster_rank() -> u32 {
    let r: u32;
    // SAFETY: reads a special register.
    unsafe {
        asm!("mov.u32 {r}, %cluster_ctarank;", r = out(reg32) r, options(pure, nomem, nostack));
    }
    r
}

/// The first half of a cluster-wide barrier, with no memory ordering
/// (`barrier.cluster.arrive.relaxed`): this thread has got here. Each
/// arrive is followed by one [`cluster_wait`] before the next, unless the
/// thread exits. What must be seen across blocks goes through
/// [`MBarrier`]s (and [`fence_mbarrier_init`] before the arrive for their
/// initialisation).
#[inline(always)]
pub fn cluster_arrive_relaxed() {
    // SAFETY: every cluster kernel reaches its cluster barrier with all
    // threads of every block of the cluster (not `.aligned`: a warp may
    // arrive diverged, after one lane's set-up).
    unsafe {
        asm!("barrier.cluster.arrive.relaxed;", options(nostack));
    }
}

/// The second half of a cluster-wide barrier: waits until every thread of
/// the cluster has arrived (so every block has started).
#[inline(always)]
pub fn cluster_wait() {
    // SAFETY: as `cluster_arrive_relaxed`, after this thread's arrive.
    unsafe {
        asm!("barrier.cluster.wait;", options(nostack));
    }
}

/// Makes this thread's [`MBarrier::init`]s visible to the cluster's other
/// blocks (`fence.mbarrier_init.release.cluster`), before its arrive at a
/// cluster barrier whose wait comes before their first use.
#[inline(always)]
pub fn fence_mbarrier_init() {
    // SAFETY: a fence; no operands.
    unsafe {
        asm!("fence.mbarrier_init.release.cluster;", options(nostack));
    }
}

/// Orders this thread's earlier shared-memory writes before the reads of
/// bulk copies ([`Peer::copy`]) that a later barrier orders after it
/// (`fence.proxy.async.shared::cta`: the copies read through the async
/// proxy).
#[inline(always)]
pub fn fence_proxy_async_shared() {
    // SAFETY: a fence; no operands.
    unsafe {
        asm!("fence.proxy.async.shared::cta;", options(nostack));
    }
}

/// An mbarrier (8 bytes, 8-aligned) in this block's dynamic shared memory,
/// used for one phase: initialised by one thread with one pending arrival,
/// which that thread makes with the bytes the phase waits for
/// ([`MBarrier::arrive_expect`]); peers' [`Peer::send`]s complete them.
#[derive(Clone, Copy)]
pub struct MBarrier {
    word: Shared<u64>,
}

impl MBarrier {
    /// The mbarrier `byte_offset` bytes into the dynamic shared memory.
    #[inline(always)]
    pub fn at(byte_offset: u32) -> Self {
        MBarrier {
            word: Shared::dynamic(byte_offset),
        }
    }

    /// Shared-window address of the mbarrier.
    #[inline(always)]
    fn addr(self) -> u64 {
        let a: u64;
        // SAFETY: converts a pointer into this block's shared memory.
        unsafe {
            asm!("cvta.to.shared.u64 {a}, {p};", p = in(reg64) self.word.ptr, a = out(reg64) a, options(pure, nomem, nostack));
        }
        a
    }

    /// Initialise with one pending arrival (one thread, before any other use,
    /// then [`fence_mbarrier_init`] and a barrier).
    #[inline(always)]
    pub fn init(self) {
        // SAFETY: 8-aligned in shared memory by the layout; one thread.
        unsafe {
            asm!("mbarrier.init.shared::cta.b64 [{a}], 1;", a = in(reg64) self.addr(), options(nostack));
        }
    }

    /// The pending arrival, waiting for `bytes` from [`Peer::send`]s (which
    /// may land before it or after). One thread, once.
    #[inline(always)]
    pub fn arrive_expect(self, bytes: u32) {
        // SAFETY: an initialised mbarrier of this block.
        unsafe {
            asm!(
                "{{ .reg .b64 s; mbarrier.arrive.expect_tx.shared::cta.b64 s, [{a}], {b}; }}",
                a = in(reg64) self.addr(), b = in(reg32) bytes, options(nostack),
            );
        }
    }

    /// Waits until the phase has completed (its arrival made, its bytes
    /// landed): the sends' stores are then visible to this thread.
    #[inline(always)]
    pub fn wait(self) {
        loop {
            let done: u32;
            // SAFETY: an initialised mbarrier of this block, phase 0.
            unsafe {
                asm!(
                    "{{ .reg .pred p; mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [{a}], 0; selp.u32 {d}, 1, 0, p; }}",
                    a = in(reg64) self.addr(), d = out(reg32) done, options(nostack),
                );
            }
            if done != 0 {
                return;
            }
        }
    }

    /// The same mbarrier in block `rank` of the cluster.
    #[inline(always)]
    pub fn peer(self, rank: u32) -> Peer<u64> {
        self.word.peer(rank)
    }
}

/// Abort the kernel.
#[inline(always)]
pub fn trap() -> ! {
    // SAFETY: `trap` ends the thread; there is nothing to uphold.
    unsafe { nvptx::trap() }
}

/// Bit `i` set when lane `i` of the (fully active) warp passed `pred`.
#[inline(always)]
pub fn ballot(pred: bool) -> u32 {
    let r: u32;
    // SAFETY: all 32 lanes execute every ballot in this crate (mask 0xffffffff).
    unsafe {
        asm!(
            "{{ .reg .pred p; setp.ne.u32 p, {x}, 0; vote.sync.ballot.b32 {r}, p, 0xffffffff; }}",
            x = in(reg32) pred as u32,
            r = out(reg32) r,
            options(nomem, nostack),
        );
    }
    r
}

/// Lanes of the warp that hold the same `value` as this one.
#[inline(always)]
pub fn match_any(value: u32) -> u32 {
    let r: u32;
    // SAFETY: as `ballot`, all lanes take part.
    unsafe {
        asm!("match.any.sync.b32 {r}, {v}, 0xffffffff;", r = out(reg32) r, v = in(reg32) value, options(nomem, nostack));
    }
    r
}

/// Value of `v` in lane `lane - delta` (own value for lanes below `delta`).
#[inline(always)]
pub fn shfl_up(v: u32, delta: u32) -> u32 {
    let r: u32;
    // SAFETY: as `ballot`, all lanes take part.
    unsafe {
        asm!("shfl.sync.up.b32 {r}, {v}, {d}, 0, 0xffffffff;", r = out(reg32) r, v = in(reg32) v, d = in(reg32) delta, options(nomem, nostack));
    }
    r
}

/// Value of `v` in lane `lane ^ mask`.
#[inline(always)]
pub fn shfl_xor(v: u32, mask: u32) -> u32 {
    let r: u32;
    // SAFETY: as `ballot`, all lanes take part.
    unsafe {
        asm!("shfl.sync.bfly.b32 {r}, {v}, {m}, 31, 0xffffffff;", r = out(reg32) r, v = in(reg32) v, m = in(reg32) mask, options(nomem, nostack));
    }
    r
}

/// Functions `fn(a: u32, b: u32) -> u32` that are one PTX instruction on
/// registers (`$op r, a, b;`).
macro_rules! register_op {
    ($($(#[$doc:meta])* $name:ident = $op:literal;)*) => {$(
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(a: u32, b: u32) -> u32 {
            let r: u32;
            // SAFETY: register arithmetic only.
            unsafe {
                asm!(concat!($op, " {r}, {a}, {b};"), r = out(reg32) r, a = in(reg32) a, b = in(reg32) b, options(pure, nomem, nostack));
            }
            r
        }
    )*};
}

register_op! {
    /// Lane-wise maximum of two pairs of bf16 (`max.NaN.bf16x2`): NaN where
    /// either is NaN.
    max_nan_bf16x2 = "max.NaN.bf16x2";
    /// Lane-wise maximum of two pairs of f16 (`max.NaN.f16x2`): NaN where
    /// either is NaN.
    max_nan_f16x2 = "max.NaN.f16x2";
    /// Lane-wise `!(a < b)` of two pairs of bf16 (`set.geu.u32.bf16x2`: at
    /// or above, or either NaN): each 16-bit half all ones where true.
    not_below_bf16x2 = "set.geu.u32.bf16x2";
    /// As [`not_below_bf16x2`] for pairs of f16 (`set.geu.u32.f16x2`).
    not_below_f16x2 = "set.geu.u32.f16x2";
    /// Maximum of two f32 given by their bits (`max.NaN.f32`): NaN if either
    /// is NaN.
    max_nan_f32 = "max.NaN.f32";
}

/// Functions `fn(v: u32) -> u32` folding `v` over the (fully active) warp
/// with one `redux.sync` instruction, the result in every lane: shorter
/// than five shuffle steps on a lone block's chain, but slower than them in
/// a busy SM (BENCHMARKS.md v16), so only the cluster body uses them.
macro_rules! warp_redux {
    ($($(#[$doc:meta])* $name:ident = $op:literal;)*) => {$(
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(v: u32) -> u32 {
            let r: u32;
            // SAFETY: as `ballot`, all lanes take part.
            unsafe {
                asm!(concat!($op, " {r}, {v}, 0xffffffff;"), r = out(reg32) r, v = in(reg32) v, options(nomem, nostack));
            }
            r
        }
    )*};
}

warp_redux! {
    /// Sum of `v` over the warp (`redux.sync.add.u32`).
    redux_add = "redux.sync.add.u32";
    /// Smallest `v` of the warp (`redux.sync.min.u32`).
    redux_min = "redux.sync.min.u32";
    /// Largest `v` of the warp (`redux.sync.max.u32`).
    redux_max = "redux.sync.max.u32";
}

/// Mask of the lanes below this one.
#[inline(always)]
pub fn lanemask_lt() -> u32 {
    let r: u32;
    // SAFETY: reads a special register.
    unsafe {
        asm!("mov.u32 {r}, %lanemask_lt;", r = out(reg32) r, options(pure, nomem, nostack));
    }
    r
}

/// Read-only view of device memory (`ld.global.nc`), indexed in `T`s.
#[derive(Clone, Copy)]
pub struct Global<T> {
    ptr: *const T,
}

impl<T: Copy> Global<T> {
    /// View of the allocation at device address `addr`.
    ///
    /// The host launch wrapper guarantees that every index a kernel reads is
    /// inside the buffer it passed and that the buffer is not written during
    /// the launch.
    #[inline(always)]
    pub fn new(addr: u64) -> Self {
        Self {
            ptr: addr as *const T,
        }
    }

    /// The view shifted by `offset` elements.
    #[inline(always)]
    pub fn offset(self, offset: u64) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(offset as usize),
        }
    }

    /// Device address of element `i`.
    #[inline(always)]
    pub fn addr(self, i: u32) -> u64 {
        self.ptr.wrapping_add(i as usize) as u64
    }

    /// Element `i`.
    #[inline(always)]
    pub fn get(self, i: u32) -> T {
        // SAFETY: in bounds by the launch contract (see `new`).
        unsafe { self.ptr.add(i as usize).read() }
    }
}

/// 16 bytes from the 16-byte-aligned device address `addr`, through the
/// non-coherent (read-only) path.
#[inline(always)]
pub fn load_nc_v4(addr: u64) -> [u32; 4] {
    let (a, b, c, d): (u32, u32, u32, u32);
    // SAFETY: callers pass aligned in-bounds addresses of read-only input.
    unsafe {
        asm!(
            "ld.global.nc.v4.u32 {{{a}, {b}, {c}, {d}}}, [{p}];",
            a = out(reg32) a, b = out(reg32) b, c = out(reg32) c, d = out(reg32) d,
            p = in(reg64) addr,
            options(pure, readonly, nostack),
        );
    }
    [a, b, c, d]
}

/// Writable view of device memory, indexed in `T`s.
#[derive(Clone, Copy)]
pub struct GlobalMut<T> {
    ptr: *mut T,
}

impl<T: Copy> GlobalMut<T> {
    /// View of the allocation at device address `addr` (bounds as [`Global::new`]).
    #[inline(always)]
    pub fn new(addr: u64) -> Self {
        Self {
            ptr: addr as *mut T,
        }
    }

    /// Device address of element `i`.
    #[inline(always)]
    pub fn addr(self, i: u64) -> u64 {
        self.ptr.wrapping_add(i as usize) as u64
    }

    /// Store `v` at element `i`.
    #[inline(always)]
    pub fn set(self, i: u64, v: T) {
        // SAFETY: in bounds by the launch contract; each index is written by one thread.
        unsafe { self.ptr.add(i as usize).write(v) }
    }
}

/// The block's dynamic shared memory, as an array of `T`.
#[derive(Clone, Copy)]
pub struct Shared<T> {
    ptr: *mut T,
}

impl<T: Copy> Shared<T> {
    /// The dynamic shared memory, starting `byte_offset` bytes in.
    ///
    /// The launch wrapper sizes the dynamic shared memory from the same
    /// layout functions (`params`) the kernels use, so every index below is
    /// inside it.
    #[inline(always)]
    pub fn dynamic(byte_offset: u32) -> Self {
        let base = core::intrinsics::gpu::gpu_launch_sized_workgroup_mem::<u64>() as *mut u8;
        Self {
            ptr: base.wrapping_add(byte_offset as usize) as *mut T,
        }
    }

    /// Element `i`.
    #[inline(always)]
    pub fn get(self, i: u32) -> T {
        // SAFETY: in bounds (see `dynamic`); accesses of different threads are
        // separated by barriers, which the compiler treats as memory clobbers.
        unsafe { self.ptr.add(i as usize).read() }
    }

    /// Store `v` at element `i`.
    #[inline(always)]
    pub fn set(self, i: u32, v: T) {
        // SAFETY: in bounds (see `dynamic`); accesses of different threads are
        // separated by barriers, which the compiler treats as memory clobbers.
        unsafe { self.ptr.add(i as usize).write(v) }
    }
}

impl Shared<u64> {
    /// Starts a copy of the 16 bytes at the 16-byte-aligned device address
    /// `src` to words `i` and `i + 1` (`i` even) through L2
    /// (`cp.async.cg`); [`copy_async_wait`] and then a barrier make them
    /// visible to the block.
    #[inline(always)]
    pub fn copy_async(self, i: u32, src: u64) {
        // SAFETY: in bounds (see `dynamic`) and 16-byte aligned by the
        // caller; no other access to these words before the wait.
        unsafe {
            asm!(
                "{{ .reg .u64 s; cvta.to.shared.u64 s, {p}; cp.async.cg.shared.global [s], [{g}], 16; }}",
                p = in(reg64) self.ptr.add(i as usize), g = in(reg64) src, options(nostack),
            );
        }
    }
}

/// Waits for this thread's [`Shared::copy_async`]s (`cp.async.wait_all`).
#[inline(always)]
pub fn copy_async_wait() {
    // SAFETY: no operands.
    unsafe {
        asm!("cp.async.wait_all;", options(nostack));
    }
}

impl<T: Copy> Shared<T> {
    /// The same buffer in the dynamic shared memory of block `rank` of this
    /// block's cluster (distributed shared memory, `mapa`).
    #[inline(always)]
    pub fn peer(self, rank: u32) -> Peer<T> {
        let addr: u64;
        // SAFETY: maps an address of this block's shared memory; `rank` is
        // below the cluster size by the launch contract.
        unsafe {
            asm!(
                "{{ .reg .u64 a; cvta.to.shared.u64 a, {p}; mapa.shared::cluster.u64 {d}, a, {r}; }}",
                p = in(reg64) self.ptr, r = in(reg32) rank, d = out(reg64) addr,
                options(pure, nomem, nostack),
            );
        }
        Peer {
            addr,
            element: core::marker::PhantomData,
        }
    }
}

/// A buffer in the shared memory of a block of this cluster
/// ([`Shared::peer`]), indexed in `T`s, written with [`Peer::send`]. Its
/// block must have started (a cluster barrier's wait comes first) and not
/// exited (it waits for every send to it before it does).
#[derive(Clone, Copy)]
pub struct Peer<T> {
    addr: u64,
    element: core::marker::PhantomData<T>,
}

impl Peer<u32> {
    /// Stores `v` at element `i` asynchronously (`st.async`), completing 4
    /// of the bytes the peer's `bar` ([`MBarrier::peer`]) waits for.
    #[inline(always)]
    pub fn send(self, i: u32, v: u32, bar: Peer<u64>) {
        // SAFETY: in bounds as the `Shared` it maps; each index is written by
        // one thread, read after the peer's wait on `bar`.
        unsafe {
            asm!(
                "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [{p}], {v}, [{b}];",
                p = in(reg64) self.addr + 4 * i as u64, v = in(reg32) v, b = in(reg64) bar.addr,
                options(nostack),
            );
        }
    }
}

impl Peer<u64> {
    /// Stores `v` at element `i` asynchronously, completing 8 bytes of
    /// `bar` (as [`Peer::<u32>::send`]).
    #[inline(always)]
    pub fn send(self, i: u32, v: u64, bar: Peer<u64>) {
        // SAFETY: as `Peer::<u32>::send`.
        unsafe {
            asm!(
                "st.async.shared::cluster.mbarrier::complete_tx::bytes.b64 [{p}], {v}, [{b}];",
                p = in(reg64) self.addr + 8 * i as u64, v = in(reg64) v, b = in(reg64) bar.addr,
                options(nostack),
            );
        }
    }
}

impl Peer<u64> {
    /// Copies `src[0..words]` of this block's shared memory to elements
    /// `i..i + words` of the peer's buffer with the bulk copy engine
    /// (`cp.async.bulk`), completing `8 * words` bytes of the peer's `bar`.
    /// Both ends 16-byte aligned, `words` even and above 0; `src` written
    /// before a [`fence_proxy_async_shared`] and a barrier.
    #[inline(always)]
    pub fn copy(self, i: u32, src: Shared<u64>, words: u32, bar: Peer<u64>) {
        // SAFETY: in bounds and aligned by the caller; the peer reads the
        // words only after its wait on `bar`.
        unsafe {
            asm!(
                "{{ .reg .u64 s; cvta.to.shared.u64 s, {src}; cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [{p}], [s], {n}, [{b}]; }}",
                src = in(reg64) src.ptr, p = in(reg64) self.addr + 8 * i as u64, n = in(reg32) 8 * words,
                b = in(reg64) bar.addr, options(nostack),
            );
        }
    }
}

impl Shared<u32> {
    /// `self[i] += v` atomically (`red.shared.add.u32`).
    #[inline(always)]
    pub fn atomic_add(self, i: u32, v: u32) {
        let p = self.ptr.wrapping_add(i as usize);
        // SAFETY: `p` points into this block's shared memory (see `dynamic`).
        unsafe {
            asm!(
                "{{ .reg .u64 a; cvta.to.shared.u64 a, {p}; red.shared.add.u32 [a], {v}; }}",
                p = in(reg64) p, v = in(reg32) v,
            );
        }
    }
}

impl Shared<u32> {
    /// `self[i] += v` atomically, returning the old value (`atom.shared.add.u32`).
    #[inline(always)]
    pub fn fetch_add(self, i: u32, v: u32) -> u32 {
        let p = self.ptr.wrapping_add(i as usize);
        let old: u32;
        // SAFETY: `p` points into this block's shared memory (see `dynamic`).
        unsafe {
            asm!(
                "{{ .reg .u64 a; cvta.to.shared.u64 a, {p}; atom.shared.add.u32 {o}, [a], {v}; }}",
                p = in(reg64) p, v = in(reg32) v, o = out(reg32) old,
            );
        }
        old
    }

    /// Store 16 bytes at words `i..i + 4` (`i * 4` a multiple of 16).
    #[inline(always)]
    pub fn set_v4(self, i: u32, v: [u32; 4]) {
        let p = self.ptr.wrapping_add(i as usize);
        // SAFETY: in bounds (see `dynamic`) and 16-byte aligned by the caller;
        // accesses of different threads are separated by barriers.
        unsafe {
            asm!(
                "{{ .reg .u64 a; cvta.to.shared.u64 a, {p}; st.shared.v4.u32 [a], {{{x}, {y}, {z}, {w}}}; }}",
                p = in(reg64) p, x = in(reg32) v[0], y = in(reg32) v[1], z = in(reg32) v[2], w = in(reg32) v[3],
            );
        }
    }
}

impl GlobalMut<u32> {
    /// Element `i`, read through L2 (as [`GlobalMut::<u64>::get_cg`]).
    #[inline(always)]
    pub fn get_cg(self, i: u64) -> u32 {
        let p = self.ptr.wrapping_add(i as usize);
        let v: u32;
        // SAFETY: in bounds by the launch contract.
        unsafe {
            asm!("ld.global.cg.u32 {v}, [{p}];", p = in(reg64) p, v = out(reg32) v, options(readonly, nostack));
        }
        v
    }

    /// `self[i] = max(self[i], v)` atomically at device scope.
    #[inline(always)]
    pub fn atomic_max(self, i: u64, v: u32) {
        let p = self.ptr.wrapping_add(i as usize);
        // SAFETY: in bounds by the launch contract.
        unsafe {
            asm!("red.global.max.u32 [{p}], {v};", p = in(reg64) p, v = in(reg32) v, options(nostack));
        }
    }

    /// `self[i] += v` atomically at device scope, returning the old value.
    #[inline(always)]
    pub fn fetch_add(self, i: u64, v: u32) -> u32 {
        let p = self.ptr.wrapping_add(i as usize);
        let old: u32;
        // SAFETY: in bounds by the launch contract.
        unsafe {
            asm!("atom.global.add.u32 {o}, [{p}], {v};", p = in(reg64) p, v = in(reg32) v, o = out(reg32) old);
        }
        old
    }
}

impl GlobalMut<u64> {
    /// Element `i`, read through L2 (`ld.global.cg`): sees what other blocks
    /// wrote before a [`fence`] that this block has synchronised with.
    #[inline(always)]
    pub fn get_cg(self, i: u64) -> u64 {
        let p = self.ptr.wrapping_add(i as usize);
        let v: u64;
        // SAFETY: in bounds by the launch contract.
        unsafe {
            asm!("ld.global.cg.u64 {v}, [{p}];", p = in(reg64) p, v = out(reg64) v, options(readonly, nostack));
        }
        v
    }
}

/// Lets the launch that depends on this one programmatically (the host's
/// `PROGRAMMATIC_STREAM_SERIALIZATION` attribute) start its blocks once
/// every block of this grid has called this or exited
/// (`griddepcontrol.launch_dependents`); a no-op without such a launch.
#[inline(always)]
pub fn launch_dependents() {
    // SAFETY: a scheduling hint; no operands, no memory effect.
    unsafe {
        asm!("griddepcontrol.launch_dependents;", options(nostack));
    }
}

/// Waits until the grid this launch depends on programmatically has
/// completed and its memory writes are visible (`griddepcontrol.wait`); at
/// once for a launch without such a dependency. Before anything that
/// reads what that grid wrote.
#[inline(always)]
pub fn wait_for_prerequisite_grid() {
    // SAFETY: a wait; no operands.
    unsafe {
        asm!("griddepcontrol.wait;", options(nostack));
    }
}

/// Device-scope acquire-release fence: orders this thread's global memory
/// accesses before it against those after it, for every block of the grid.
#[inline(always)]
pub fn fence() {
    // SAFETY: a fence has no operands.
    unsafe {
        asm!("fence.acq_rel.gpu;", options(nostack));
    }
}

/// Value of `v` in lane `src`.
#[inline(always)]
pub fn shfl_idx(v: u32, src: u32) -> u32 {
    let r: u32;
    // SAFETY: as `ballot`, all lanes take part.
    unsafe {
        asm!("shfl.sync.idx.b32 {r}, {v}, {s}, 31, 0xffffffff;", r = out(reg32) r, v = in(reg32) v, s = in(reg32) src, options(nomem, nostack));
    }
    r
}

/// 2^x (`ex2.approx.ftz.f32`: relative error about 2^-22).
#[inline(always)]
pub fn exp2(x: f32) -> f32 {
    let r: f32;
    // SAFETY: pure arithmetic on registers.
    unsafe {
        asm!("ex2.approx.ftz.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack));
    }
    r
}

/// log2(x) (`lg2.approx.ftz.f32`: absolute error about 2^-22 near 1).
#[inline(always)]
pub fn log2(x: f32) -> f32 {
    let r: f32;
    // SAFETY: pure arithmetic on registers.
    unsafe {
        asm!("lg2.approx.ftz.f32 {r}, {x};", r = out(reg32) r, x = in(reg32) x, options(pure, nomem, nostack));
    }
    r
}
