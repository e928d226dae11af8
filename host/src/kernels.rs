//! The loaded PTX module and the typed launch wrappers of its kernels.

use std::ffi::c_void;
use std::sync::Arc;

use cust::context::{Context, CurrentContext};
use cust::device::{Device, DeviceAttribute};
use cust::error::CudaError;
use cust::memory::DeviceCopy;
use cust::module::Module;
use cust::stream::Stream;
use cust::sys as cuda;
use streamtopk_kernels::element::{Bf16, DType, Element, F16, F32};
use streamtopk_kernels::params::{mode, SampleParams, TopKParams, SAMPLE_THREADS};

use crate::error::{Error, Result};
use crate::plan::{Limits, Plan};

/// A host element type the kernels read: `half::bf16`, `half::f16` or `f32`.
pub trait Logit: DeviceCopy + Copy + Send + Sync + 'static {
    /// The device-side element type.
    type Kernel: Element;
    /// Raw bits, zero-extended.
    fn bits(self) -> u32;
    /// The value as `f32` (exact).
    fn to_f32(self) -> f32;
    /// The element of the given `f32` (rounded to nearest).
    fn from_f32(v: f32) -> Self;
}

impl Logit for half::bf16 {
    type Kernel = Bf16;
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
}

impl Logit for half::f16 {
    type Kernel = F16;
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
}

impl Logit for f32 {
    type Kernel = F32;
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

/// `Ok` for `CUDA_SUCCESS`, else the driver's error code and the call's name.
pub(crate) fn driver(call: &'static str, r: cuda::CUresult) -> Result<()> {
    if r == cuda::CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        Err(Error::Driver {
            call,
            code: r as u32,
        })
    }
}

/// Names of the kernel entry points, by body (top-k, cluster top-k,
/// sampling, cluster sampling, filter top-k, its merges), then dtype.
pub const KERNEL_NAMES: [&str; KERNELS] = [
    "topk_bf16",
    "topk_f16",
    "topk_f32",
    "topk_cluster_bf16",
    "topk_cluster_f16",
    "topk_cluster_f32",
    "sample_bf16",
    "sample_f16",
    "sample_f32",
    "sample_cluster_bf16",
    "sample_cluster_f16",
    "sample_cluster_f32",
    "topk_filter_bf16",
    "topk_filter_f16",
    "topk_filter_f32",
    "topk_merge_bf16",
    "topk_merge_f16",
    "topk_merge_f32",
];
const KERNELS: usize = 18;

/// Index of each body's kernels in [`KERNEL_NAMES`].
const TOPK: usize = 0;
const TOPK_CLUSTER: usize = 3;
const SAMPLE: usize = 6;
const SAMPLE_CLUSTER: usize = 9;
const TOPK_FILTER: usize = 12;
const TOPK_MERGE: usize = 15;

/// Whether [`KERNEL_NAMES`]`[function]` is a cluster kernel (launched in
/// clusters of `grid.0` blocks).
const fn is_cluster(function: usize) -> bool {
    (function >= TOPK_CLUSTER && function < SAMPLE)
        || (function >= SAMPLE_CLUSTER && function < TOPK_FILTER)
}

/// `CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED` (CUDA 12; not in
/// the CUDA 11 bindings of `cust`).
const NON_PORTABLE_CLUSTER_SIZE_ALLOWED: i32 = 14;
/// `CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION`.
const LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: u32 = 4;
/// `CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION`: the launch may
/// start while the one before it in the stream runs (once that one's blocks
/// have all called `griddepcontrol.launch_dependents` or exited); it
/// waits for it with `griddepcontrol.wait`.
const LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: u32 = 6;

/// `CUlaunchAttribute` (CUDA 12): an id, padding, a 64-byte value union
/// (here the cluster dimensions).
#[repr(C)]
struct LaunchAttribute {
    id: u32,
    pad: u32,
    value: [u32; 16],
}

/// `CUlaunchConfig` (CUDA 12).
#[repr(C)]
struct LaunchConfig {
    grid: [u32; 3],
    block: [u32; 3],
    shared_mem_bytes: u32,
    stream: cuda::CUstream,
    attrs: *mut LaunchAttribute,
    num_attrs: u32,
}

extern "C" {
    /// `cuLaunchKernelEx` (CUDA 12 driver API).
    fn cuLaunchKernelEx(
        config: *const LaunchConfig,
        f: cuda::CUfunction,
        params: *mut *mut c_void,
        extra: *mut *mut c_void,
    ) -> cuda::CUresult;
    /// `cuFuncSetAttribute` with the attribute as a plain int (for values
    /// the CUDA 11 enum of `cust` lacks).
    #[link_name = "cuFuncSetAttribute"]
    fn cuFuncSetAttributeRaw(f: cuda::CUfunction, attr: i32, value: i32) -> cuda::CUresult;
}

/// Index of a dtype's kernel in [`KERNEL_NAMES`].
fn dtype_slot(dtype: DType) -> usize {
    match dtype {
        DType::BF16 => 0,
        DType::F16 => 1,
        DType::F32 => 2,
    }
}

/// The streamtopk module loaded into the primary context of one device.
/// Load it once and share it (`Arc`) between threads and [`crate::TopK`]s.
pub struct Kernels {
    functions: [cuda::CUfunction; KERNELS],
    /// Most threads per block of each function (its register use decides).
    max_threads: [u32; KERNELS],
    sm_count: u32,
    smem_limit: u32,
    // Field order: the module is unloaded before the context is released.
    _module: Module,
    context: Context,
}

// SAFETY: CUfunction handles are plain driver handles valid in their context
// from any thread; every use makes the context current first.
unsafe impl Send for Kernels {}
// SAFETY: as above; the handles are never mutated after load.
unsafe impl Sync for Kernels {}

impl Kernels {
    /// Initialise CUDA, retain device `ordinal`'s primary context and load `ptx`.
    pub fn load(ptx: &str, ordinal: u32) -> Result<Arc<Kernels>> {
        cust::init(cust::CudaFlags::empty()).map_err(Error::NoDevice)?;
        let device = Device::get_device(ordinal).map_err(Error::NoDevice)?;
        let context = Context::new(device)?;
        let module = Module::from_ptx(ptx, &[]).map_err(|e| match e {
            CudaError::InvalidPtx
            | CudaError::NoBinaryForGpu
            | CudaError::InvalidImage
            | CudaError::UnknownError
            | CudaError::InvalidSource => Error::PtxLoad(e),
            e => Error::Cuda(e),
        })?;
        let mut max_smem = 0;
        // SAFETY: writes one int for a valid device handle.
        driver("cuDeviceGetAttribute", unsafe {
            cuda::cuDeviceGetAttribute(
                &mut max_smem,
                cuda::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                device.as_raw(),
            )
        })?;
        let sm_count = device.get_attribute(DeviceAttribute::MultiprocessorCount)? as u32;
        let mut functions = [std::ptr::null_mut(); KERNELS];
        let mut max_threads = [0; KERNELS];
        for (function, (f, name)) in functions.iter_mut().zip(KERNEL_NAMES).enumerate() {
            *f = module.get_function(name).map_err(Error::PtxLoad)?.to_raw();
            // SAFETY: `f` is a live function of `module`; the attribute only
            // raises the dynamic shared memory a launch may ask for.
            driver("cuFuncSetAttribute", unsafe {
                cuda::cuFuncSetAttribute(
                    *f,
                    cuda::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    max_smem,
                )
            })?;
            let mut most = 0;
            // SAFETY: writes one int for a live function.
            driver("cuFuncGetAttribute", unsafe {
                cuda::cuFuncGetAttribute(
                    &mut most,
                    cuda::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                    *f,
                )
            })?;
            max_threads[function] = most as u32;
            if is_cluster(function) {
                // SAFETY: as above; allows clusters of up to 16 blocks
                // (sm_90), which the planner asks for only when they fit.
                driver("cuFuncSetAttribute", unsafe {
                    cuFuncSetAttributeRaw(*f, NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
                })?;
            }
        }
        Ok(Arc::new(Kernels {
            functions,
            max_threads,
            sm_count,
            smem_limit: max_smem as u32,
            _module: module,
            context,
        }))
    }

    /// Multiprocessors of the device.
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }

    /// Opt-in shared memory per block of the device, in bytes.
    pub fn smem_limit(&self) -> u32 {
        self.smem_limit
    }

    /// What launches of `dtype` may use; `sampler`: for the sampling kernels.
    pub fn limits(&self, dtype: DType, sampler: bool) -> Limits {
        let body = if sampler {
            SAMPLE_CLUSTER
        } else {
            TOPK_CLUSTER
        };
        Limits {
            smem: self.smem_limit,
            cluster_threads: self.max_threads[body + dtype_slot(dtype)],
            sms: self.sm_count,
        }
    }

    /// Make this module's context current on the calling thread.
    pub fn make_current(&self) -> Result<()> {
        CurrentContext::set_current(&self.context)?;
        Ok(())
    }

    /// Launch `function` with one by-value parameter struct; `after_previous`:
    /// as a programmatic dependent of the stream's previous launch (the
    /// kernel must `griddepcontrol.wait` before it reads that launch's
    /// output).
    ///
    /// # Safety
    /// `params` must describe buffers that are valid for the whole launch
    /// and match the kernel's contract (sizes, grid, shared memory).
    #[allow(clippy::too_many_arguments)]
    unsafe fn launch<P>(
        &self,
        function: usize,
        grid: (u32, u32),
        block: u32,
        smem: u32,
        stream: &Stream,
        params: &P,
        after_previous: bool,
    ) -> Result<()> {
        let mut args = [params as *const P as *mut c_void];
        let attribute = |id, value: [u32; 3]| {
            let mut a = LaunchAttribute {
                id,
                pad: 0,
                value: [0; 16],
            };
            a.value[..3].copy_from_slice(&value);
            a
        };
        let mut attrs = [
            attribute(LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, [grid.0, 1, 1]),
            attribute(
                LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
                [1, 0, 0],
            ),
        ];
        // The cluster shape if a cluster kernel, then the early start if asked.
        let (first, last) = (
            if is_cluster(function) { 0 } else { 1 },
            if after_previous { 2 } else { 1 },
        );
        let attrs = &mut attrs[first..last];
        if !attrs.is_empty() {
            let config = LaunchConfig {
                grid: [grid.0, grid.1, 1],
                block: [block, 1, 1],
                shared_mem_bytes: smem,
                stream: stream.as_inner(),
                attrs: attrs.as_mut_ptr(),
                num_attrs: attrs.len() as u32,
            };
            // SAFETY: as below; `config` and its attributes outlive the call.
            return driver("cuLaunchKernelEx", unsafe {
                cuLaunchKernelEx(
                    &config,
                    self.functions[function],
                    args.as_mut_ptr(),
                    std::ptr::null_mut(),
                )
            });
        }
        // SAFETY: the caller upholds the kernel contract; `args` outlives the call
        // (the driver copies parameters at launch).
        driver("cuLaunchKernel", unsafe {
            cuda::cuLaunchKernel(
                self.functions[function],
                grid.0,
                grid.1,
                1,
                block,
                1,
                1,
                smem,
                stream.as_inner(),
                args.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        })
    }

    /// Launch the top-k kernel (see `streamtopk_kernels::kernel`).
    ///
    /// # Safety
    /// As [`Kernels::launch`]: `p.input` holds `batch * p.vocab` elements of
    /// `dtype`; `p.values` / `p.indices` hold `batch * p.k` elements; when
    /// `p.chunks > 1`, `p.pool` holds `batch * p.chunks * p.k` words and
    /// `p.arrivals` `batch` counters that are zero.
    pub(crate) unsafe fn topk(
        &self,
        dtype: DType,
        grid: (u32, u32),
        threads: u32,
        smem: u32,
        stream: &Stream,
        p: &TopKParams,
    ) -> Result<()> {
        // SAFETY: forwarded to the caller.
        unsafe {
            self.launch(
                TOPK + dtype_slot(dtype),
                grid,
                threads,
                smem,
                stream,
                p,
                false,
            )
        }
    }

    /// Launch the top-k kernel of a cluster or filter `plan` over `batch`
    /// rows: the cluster kernel (see `streamtopk_kernels::cluster`), or the
    /// filter kernel (see `streamtopk_kernels::filter`) in the launch mode
    /// `p.mode` (`BOUND` or `SAMPLE`, then `FILTER` and `MERGE` or
    /// `FILTER_MERGE`; or `LOCAL`, `MERGE_LOCAL` for a single-pass plan; a
    /// merge or `SAMPLE` launch has one block a row).
    ///
    /// # Safety
    /// As [`Kernels::topk`], with `p` from `plan`; a cluster plan uses no
    /// workspace, a filter plan needs `p.pool` to hold `batch *
    /// plan.pool()` words and `p.arrivals` `batch * filter_words::WORDS`
    /// counters that are zero before its first launch.
    pub(crate) unsafe fn topk_planned(
        &self,
        dtype: DType,
        plan: &Plan,
        batch: u32,
        stream: &Stream,
        p: &TopKParams,
    ) -> Result<()> {
        let body = if plan.cluster {
            TOPK_CLUSTER
        } else if mode::is_merge(p.mode) {
            TOPK_MERGE
        } else {
            TOPK_FILTER
        };
        // FILTER, FILTER_MERGE and LOCAL blocks take `filter_rounds` chunks
        // each.
        let appenders = plan.chunks.div_ceil(plan.filter_rounds);
        let (blocks, threads, smem) = if !plan.filter {
            (plan.chunks, plan.threads, plan.smem())
        } else if p.mode == mode::FILTER_MERGE {
            (appenders, plan.threads, plan.smem())
        } else if mode::is_merge(p.mode) {
            (1, plan.threads, plan.smem())
        } else if p.mode == mode::FILTER || p.mode == mode::LOCAL {
            (appenders, plan.threads, plan.filter_layout().bound_bytes)
        } else if p.mode == mode::SAMPLE {
            (1, SAMPLE_THREADS, plan.filter_layout().bound_bytes)
        } else {
            (plan.chunks, plan.threads, plan.filter_layout().bound_bytes)
        };
        let function = body + dtype_slot(dtype);
        // A FILTER_MERGE launch starts while its BOUND launch ends: its
        // blocks load their shares, then wait in the kernel for the bound
        // (64 x 128,256 k=50 0.0181 -> 0.0172 ms, 256 x 50,304 0.0250 ->
        // 0.0241; early FILTER and MERGE launches of three-launch plans
        // measured slower, 64 x 151,936 k=1024 0.0356 -> 0.0471, and an
        // early MERGE_LOCAL no faster: BENCHMARKS.md v10, again in v15). A FILTER launch
        // after a SAMPLE launch (one block a row) starts early too.
        let after_previous =
            p.mode == mode::FILTER_MERGE || (p.mode == mode::FILTER && p.sample_rank > 0);
        // SAFETY: forwarded to the caller.
        unsafe {
            self.launch(
                function,
                (blocks, batch),
                threads,
                smem,
                stream,
                p,
                after_previous,
            )
        }
    }

    /// Launch `body`'s kernel for `dtype` over `batch` rows of `plan`: grid
    /// `(plan.chunks, batch)`, `plan.threads` threads, `smem` bytes.
    ///
    /// # Safety
    /// As [`Kernels::launch`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn launch_plan<P>(
        &self,
        body: usize,
        dtype: DType,
        plan: &Plan,
        batch: u32,
        smem: u32,
        stream: &Stream,
        p: &P,
    ) -> Result<()> {
        let (function, grid) = (body + dtype_slot(dtype), (plan.chunks, batch));
        // SAFETY: forwarded to the caller.
        unsafe { self.launch(function, grid, plan.threads, smem, stream, p, false) }
    }

    /// Launch the sampling kernel (see `streamtopk_kernels::sample`) over
    /// `batch` rows of `plan` (chunked, or a cluster per row) with `smem`
    /// bytes of shared memory.
    ///
    /// # Safety
    /// As [`Kernels::topk`] / [`Kernels::topk_planned`] for `p.topk` (a
    /// cluster plan only for rows with top-k on); the per-row arrays hold `batch`
    /// elements, `p.best` `batch * chunks` words, `p.offset` one u64 and
    /// `p.rows_done` one u32 that is zero.
    pub(crate) unsafe fn sample(
        &self,
        dtype: DType,
        plan: &Plan,
        batch: u32,
        smem: u32,
        stream: &Stream,
        p: &SampleParams,
    ) -> Result<()> {
        let body = if plan.cluster { SAMPLE_CLUSTER } else { SAMPLE };
        // SAFETY: forwarded to the caller.
        unsafe { self.launch_plan(body, dtype, plan, batch, smem, stream, p) }
    }
}
