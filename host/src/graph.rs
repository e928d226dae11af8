//! CUDA graphs: capture a sequence of calls on a stream once, replay it
//! with one launch. Every streamtopk call is capturable (no allocation, no
//! synchronisation, no host-side state that changes per call).

use cust::stream::Stream;
use cust::sys as cuda;

use crate::error::Result;
use crate::kernels::driver;

/// An instantiated CUDA graph.
pub struct Graph {
    exec: cuda::CUgraphExec,
    graph: cuda::CUgraph,
}

impl Graph {
    /// Capture what `record` enqueues on `stream` (which must not be the
    /// legacy default stream) into a graph; nothing runs until
    /// [`Graph::launch`]. The buffers `record` uses must outlive the graph.
    pub fn capture<F: FnOnce(&Stream) -> Result<()>>(stream: &Stream, record: F) -> Result<Graph> {
        // SAFETY: starts capture on a live stream; it is ended below on every path.
        driver("cuStreamBeginCapture", unsafe {
            cuda::cuStreamBeginCapture_v2(
                stream.as_inner(),
                cuda::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
        })?;
        let recorded = record(stream);
        let mut graph = std::ptr::null_mut();
        // SAFETY: ends the capture begun above; `graph` receives a new graph or stays null.
        let ended = driver("cuStreamEndCapture", unsafe {
            cuda::cuStreamEndCapture(stream.as_inner(), &mut graph)
        });
        let destroy = |graph: cuda::CUgraph| {
            if !graph.is_null() {
                // SAFETY: `graph` came from the capture and is not used again.
                unsafe { cuda::cuGraphDestroy(graph) };
            }
        };
        if let Err(e) = recorded.and(ended) {
            destroy(graph);
            return Err(e);
        }
        let mut exec = std::ptr::null_mut();
        // SAFETY: instantiates the captured graph into `exec`.
        if let Err(e) = driver("cuGraphInstantiateWithFlags", unsafe {
            cuda::cuGraphInstantiateWithFlags(&mut exec, graph, 0)
        }) {
            destroy(graph);
            return Err(e);
        }
        Ok(Graph { exec, graph })
    }

    /// Enqueue one replay of the graph on `stream`.
    pub fn launch(&self, stream: &Stream) -> Result<()> {
        // SAFETY: `exec` is a live instantiated graph; its kernels' buffers
        // outlive it (see `capture`).
        driver("cuGraphLaunch", unsafe {
            cuda::cuGraphLaunch(self.exec, stream.as_inner())
        })
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: both handles are live and owned by this value.
        unsafe {
            cuda::cuGraphExecDestroy(self.exec);
            cuda::cuGraphDestroy(self.graph);
        }
    }
}
