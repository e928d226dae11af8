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
use streamtopk_kernels::params::{SampleParams, TopKParams};

use crate::error::{Error, Result};

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

/// Names of the kernel entry points: top-k by dtype, then sampling by dtype.
pub const KERNEL_NAMES: [&str; 6] = [
    "topk_bf16",
    "topk_f16",
    "topk_f32",
    "sample_bf16",
    "sample_f16",
    "sample_f32",
];

/// Index of the sampling kernels in [`KERNEL_NAMES`].
const SAMPLE: usize = 3;

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
    functions: [cuda::CUfunction; 6],
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
        let mut functions = [std::ptr::null_mut(); 6];
        for (f, name) in functions.iter_mut().zip(KERNEL_NAMES) {
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
        }
        Ok(Arc::new(Kernels {
            functions,
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

    /// Make this module's context current on the calling thread.
    pub fn make_current(&self) -> Result<()> {
        CurrentContext::set_current(&self.context)?;
        Ok(())
    }

    /// Launch `function` with one by-value parameter struct.
    ///
    /// # Safety
    /// `params` must describe buffers that are valid for the whole launch
    /// and match the kernel's contract (sizes, grid, shared memory).
    unsafe fn launch<P>(
        &self,
        function: usize,
        grid: (u32, u32),
        block: u32,
        smem: u32,
        stream: &Stream,
        params: &P,
    ) -> Result<()> {
        let mut args = [params as *const P as *mut c_void];
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
        unsafe { self.launch(dtype_slot(dtype), grid, threads, smem, stream, p) }
    }

    /// Launch the sampling kernel (see `streamtopk_kernels::sample`).
    ///
    /// # Safety
    /// As [`Kernels::topk`] for `p.topk`; the per-row arrays hold `batch`
    /// elements, `p.best` `batch * chunks` words, `p.offset` one u64 and
    /// `p.rows_done` one u32 that is zero.
    pub(crate) unsafe fn sample(
        &self,
        dtype: DType,
        grid: (u32, u32),
        threads: u32,
        smem: u32,
        stream: &Stream,
        p: &SampleParams,
    ) -> Result<()> {
        // SAFETY: forwarded to the caller.
        unsafe { self.launch(SAMPLE + dtype_slot(dtype), grid, threads, smem, stream, p) }
    }
}
