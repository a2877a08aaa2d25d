//! The device, the kernels and the buffer helpers every WebGPU computation here uses: the model's
//! forward pass ([`super::WebGpuModel`]) and the kernel tests.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::model::quant::Scheme;
use crate::model::weights::Matrix;

pub(super) fn gpu_error(message: impl std::fmt::Display) -> Error {
    Error::Gpu(message.to_string())
}

/// Which adapter runs the model, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct AdapterSummary {
    /// The adapter's description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"; browsers may leave it
    /// empty.
    pub name: String,
    /// The API under wgpu: "vulkan", "metal", … natively, "browser webgpu" in wasm.
    pub backend: String,
    /// A software adapter (lavapipe, SwiftShader, WARP): correct, but far slower than the CPU
    /// path, so the automatic backend does not use one unless it is asked for.
    pub fallback: bool,
}

/// What a matrix kernel reads: blocks of one of the CPU's kernel schemes, as uploaded from
/// `QuantMatrix::packed_parts` (every GGUF block type runs on its scheme's kernel; see
/// `model::formats`), or plain F16 / F32 rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WeightFormat {
    Blocks(Scheme),
    F16,
    F32,
}

impl WeightFormat {
    fn all() -> impl Iterator<Item = WeightFormat> {
        Scheme::ALL.into_iter().map(WeightFormat::Blocks).chain([WeightFormat::F16, WeightFormat::F32])
    }

    fn of(matrix: &Matrix) -> Self {
        match matrix {
            Matrix::Quant(q) => WeightFormat::Blocks(q.scheme()),
            Matrix::F16 { .. } => WeightFormat::F16,
            Matrix::F32 { .. } => WeightFormat::F32,
        }
    }

    /// The matmul shader: matmul.wgsl and the file that defines this format's `block_dot`.
    fn source(self) -> String {
        let (q4, q5) = (include_str!("kernels/q4.wgsl"), include_str!("kernels/q5.wgsl"));
        let format = match self {
            WeightFormat::Blocks(Scheme::Q8_0) => include_str!("kernels/q8_0.wgsl").to_string(),
            WeightFormat::Blocks(Scheme::Q4_0) => [q4, include_str!("kernels/q4_0.wgsl")].concat(),
            WeightFormat::Blocks(Scheme::Q4_1) => [q4, include_str!("kernels/q4_1.wgsl")].concat(),
            WeightFormat::Blocks(Scheme::Q5_1) => [q5, include_str!("kernels/q5_1.wgsl")].concat(),
            WeightFormat::Blocks(Scheme::Q6_K) => include_str!("kernels/q6_k.wgsl").to_string(),
            WeightFormat::F16 => include_str!("kernels/f16.wgsl").to_string(),
            WeightFormat::F32 => include_str!("kernels/f32.wgsl").to_string(),
        };
        [include_str!("kernels/matmul.wgsl"), &format].concat()
    }
}

/// A compute pipeline and the layout of its one bind group: binding 0 is the shared [`Step`]
/// uniform, binding 1 the kernel's own dims, then its storage buffers.
#[derive(Clone)]
pub(super) struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Every kernel, compiled once per device.
pub(super) struct Kernels {
    matmul: Vec<(WeightFormat, Kernel)>,
    pub rmsnorm: Kernel,
    pub rope_store: Kernel,
    pub attention: Kernel,
    pub glu: Kernel,
    pub add: Kernel,
    pub scale: Kernel,
}

impl Kernels {
    pub fn matmul(&self, format: WeightFormat) -> &Kernel {
        &self.matmul.iter().find(|(f, _)| *f == format).expect("a kernel per format").1
    }
}

/// One submit's shared parameters (kernels/common.wgsl's `Step`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub tokens: u32,
    pub start: u32,
    pub logits_from: u32,
}

/// A matrix on the GPU, in the CPU's layout (see `QuantMatrix::packed_parts`).
pub(super) struct GpuMatrix {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    words: wgpu::Buffer,
    scales: wgpu::Buffer,
    mins: wgpu::Buffer,
}

/// The device and queue, the compiled kernels, and the first failure the device reported.
pub struct Gpu {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) kernels: Kernels,
    pub(super) step: wgpu::Buffer,
    adapter: AdapterSummary,
    /// Set by the device-lost callback and the uncaptured-error handler: after either, nothing
    /// the device computes can be trusted.
    failure: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Opens the first adapter WebGPU (natively: Vulkan) offers, or its fallback (software)
    /// adapter when `force_fallback_adapter`; errors clearly when there is none.
    pub async fn new(force_fallback_adapter: bool) -> Result<Gpu> {
        #[cfg(target_arch = "wasm32")]
        check_browser_webgpu()?;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(no_adapter)?;
        let info = adapter.get_info();
        let supported = adapter.limits();
        // The defaults every adapter meets, with the per-buffer sizes raised to what this one
        // allows: a larger model's embedding table can exceed the default 128 MiB binding.
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            max_buffer_size: supported.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("decoding-playground"),
                required_limits,
                memory_hints: wgpu::MemoryHints::Performance,
                ..Default::default()
            })
            .await
            .map_err(|e| gpu_error(format!("cannot open the WebGPU device of `{}`: {e}", info.name)))?;
        let failure = Arc::new(Mutex::new(None));
        let lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            record(&lost, format!("the WebGPU device was lost ({reason:?}): {message}"));
        });
        let uncaptured = failure.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            record(&uncaptured, format!("WebGPU error: {error}"));
        }));
        let adapter = AdapterSummary {
            name: info.name.clone(),
            backend: info.backend.to_string(),
            fallback: is_software(&info),
        };
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let kernels = compile_kernels(&device);
        if let Some(error) = scope.pop().await {
            return Err(gpu_error(format!("the kernels do not compile on `{}`: {error}", info.name)));
        }
        let step = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Gpu { device, queue, kernels, step, adapter, failure })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The failure the device reported, if any.
    pub(super) fn check(&self) -> Result<()> {
        match self.failure.lock().map(|f| f.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(message)) => Err(Error::Gpu(message)),
            Err(_) => Err(gpu_error("the WebGPU error handler panicked")),
        }
    }

    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let limits = self.device.limits();
        let limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        if bytes > limit {
            return Err(gpu_error(format!(
                "`{label}` needs a {bytes}-byte buffer, but this adapter binds at most {limit} bytes"
            )));
        }
        Ok(())
    }

    /// A storage buffer holding `contents` (at least 4 bytes, so that it can be bound).
    pub(super) fn storage(&self, label: &str, contents: &[u8]) -> Result<wgpu::Buffer> {
        self.check_size(label, contents.len() as u64)?;
        let padded;
        let contents = if contents.len() < 4 {
            padded = [contents, &[0; 4][contents.len()..]].concat();
            &padded[..]
        } else {
            contents
        };
        Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        }))
    }

    /// A buffer of `bytes` that only copies write and read.
    pub(super) fn copy_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A zeroed storage buffer of `floats` f32s.
    pub(super) fn zeroed(&self, label: &str, floats: usize) -> Result<wgpu::Buffer> {
        let bytes = (floats.max(1) * 4) as u64;
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A buffer the CPU maps to read `floats` f32s back.
    pub(super) fn staging(&self, floats: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (floats.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Uploads a weight matrix. Quantised ones keep the CPU's repacked blocks; F16 and F32 ones
    /// their row-major values.
    pub(super) fn upload(&self, label: &str, matrix: &Matrix) -> Result<GpuMatrix> {
        let (rows, cols) = (matrix.rows(), matrix.cols());
        if !cols.is_multiple_of(32) {
            return Err(gpu_error(format!(
                "`{label}` has {cols} columns; the WebGPU kernels need a multiple of 32"
            )));
        }
        let none: &[f32] = &[];
        let (words, scales, mins): (&[u8], &[f32], &[f32]) = match matrix {
            Matrix::Quant(q) => q.packed_parts(),
            Matrix::F32 { values, .. } => (bytemuck::cast_slice(values), none, none),
            Matrix::F16 { bits, .. } => (bytemuck::cast_slice(bits), none, none),
        };
        Ok(GpuMatrix {
            format: WeightFormat::of(matrix),
            rows,
            cols,
            words: self.storage(label, words)?,
            scales: self.storage(label, bytemuck::cast_slice(scales))?,
            mins: self.storage(label, bytemuck::cast_slice(mins))?,
        })
    }

    /// The bind group of one dispatch of `kernel`: the shared step uniform, `dims`, and
    /// `buffers` from binding 2 on.
    pub(super) fn bind(&self, kernel: &Kernel, dims: [u32; 4], buffers: &[&wgpu::Buffer]) -> Bound {
        let dims = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("dims"),
            contents: bytemuck::cast_slice(&dims),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let entries: Vec<wgpu::BindGroupEntry> = [&self.step, &dims]
            .into_iter()
            .chain(buffers.iter().copied())
            .enumerate()
            .map(|(i, buffer)| wgpu::BindGroupEntry { binding: i as u32, resource: buffer.as_entire_binding() })
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &kernel.layout,
            entries: &entries,
        });
        Bound { pipeline: kernel.pipeline.clone(), group }
    }

    /// `out` (+)= `x` · Wᵀ as one dispatch's bind group. With `head`, x's rows start at the
    /// step's `logits_from`.
    pub(super) fn bind_matmul(&self, w: &GpuMatrix, x: &wgpu::Buffer, out: &wgpu::Buffer, accumulate: bool, head: bool) -> Bound {
        let dims = [w.rows as u32, w.cols as u32, accumulate as u32, head as u32];
        self.bind(self.kernels.matmul(w.format), dims, &[x, out, &w.words, &w.scales, &w.mins])
    }

    pub(super) fn write_step(&self, step: Step) {
        self.queue.write_buffer(&self.step, 0, bytemuck::cast_slice(&[step.tokens, step.start, step.logits_from, 0]));
    }

    /// Records `dispatches` in one compute pass, copies `readback` (buffer, f32 count) into a
    /// staging buffer, submits once and awaits the values.
    pub(super) async fn run(
        &self,
        dispatches: &[(&Bound, [u32; 3])],
        readback: Option<(&wgpu::Buffer, usize, &wgpu::Buffer)>,
    ) -> Result<Vec<f32>> {
        self.check()?;
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            for (bound, [x, y, z]) in dispatches {
                pass.set_pipeline(&bound.pipeline);
                pass.set_bind_group(0, &bound.group, &[]);
                pass.dispatch_workgroups(*x, *y, *z);
            }
        }
        let Some((source, floats, staging)) = readback else {
            self.queue.submit([encoder.finish()]);
            return self.check().map(|_| Vec::new());
        };
        let bytes = (floats * 4) as u64;
        encoder.copy_buffer_to_buffer(source, 0, staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..bytes);
        let (sender, receiver) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        // Natively the callback runs inside `poll`; in the browser, when the mapping resolves.
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu_error(format!("waiting for the GPU failed: {e}")))?;
        let mapped = receiver.await.map_err(|_| gpu_error("the readback was abandoned"));
        mapped?.map_err(|e| {
            self.check().err().unwrap_or_else(|| gpu_error(format!("cannot read the results back: {e}")))
        })?;
        let values = {
            let view = slice.get_mapped_range().map_err(|e| gpu_error(format!("cannot read the results back: {e}")))?;
            view.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        staging.unmap();
        self.check()?;
        Ok(values)
    }
}

/// A kernel with its bind group: one dispatch, built once.
pub(super) struct Bound {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
}

/// Software rasterisers, by the names they give when an adapter does not say it is a fallback
/// (in the browser wgpu reads `isFallbackAdapter` into the device type, and the name from
/// `GPUAdapterInfo.description`): SwiftShader, Mesa's llvmpipe/lavapipe and softpipe, WARP.
const SOFTWARE_ADAPTERS: [&str; 5] = ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "microsoft basic render"];

fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu || SOFTWARE_ADAPTERS.iter().any(|software| name.contains(software))
}

/// In the browser wgpu's error lists the native backends it was built without: noise there.
fn no_adapter(e: wgpu::RequestAdapterError) -> Error {
    if cfg!(target_arch = "wasm32") {
        gpu_error("the browser offers no WebGPU adapter")
    } else {
        gpu_error(format!("no WebGPU adapter is available ({e})"))
    }
}

/// wgpu panics where there is no `navigator.gpu` to reach (Node, a shared worker), and a panic
/// kills the module: ask first.
#[cfg(target_arch = "wasm32")]
fn check_browser_webgpu() -> Result<()> {
    let global = js_sys::global();
    let get = |object: &wasm_bindgen::JsValue, key: &str| js_sys::Reflect::get(object, &key.into()).unwrap_or_default();
    let in_window_or_worker = !get(&global, "Window").is_undefined() || !get(&global, "WorkerGlobalScope").is_undefined();
    let gpu = get(&get(&global, "navigator"), "gpu");
    if !in_window_or_worker || gpu.is_undefined() || gpu.is_null() {
        return Err(gpu_error("this JavaScript environment has no WebGPU (navigator.gpu is missing)"));
    }
    Ok(())
}

fn record(failure: &Mutex<Option<String>>, message: String) {
    if let Ok(mut slot) = failure.lock() {
        slot.get_or_insert(message);
    }
}

fn compile_kernels(device: &wgpu::Device) -> Kernels {
    // Which storage bindings (from binding 2) each kernel only reads.
    let kernel = |label: &str, body: &str, read_only: &[bool]| {
        let source = [include_str!("kernels/common.wgsl"), body].concat();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let uniform = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        };
        let entries: Vec<_> = [uniform(0), uniform(1)]
            .into_iter()
            .chain(read_only.iter().enumerate().map(|(i, &read_only)| wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 2,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }))
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Kernel { pipeline, layout }
    };
    let heads = |body: &str| [include_str!("kernels/heads.wgsl"), body].concat();
    Kernels {
        matmul: WeightFormat::all()
            .map(|f| (f, kernel("matmul", &f.source(), &[true, false, true, true, true])))
            .collect(),
        rmsnorm: kernel("rmsnorm", include_str!("kernels/rmsnorm.wgsl"), &[true, false, true]),
        rope_store: kernel("rope_store", &heads(include_str!("kernels/rope_store.wgsl")), &[false, true, true, false, false, true]),
        attention: kernel("attention", &heads(include_str!("kernels/attention.wgsl")), &[true, true, true, false]),
        glu: kernel("glu", include_str!("kernels/glu.wgsl"), &[false, true]),
        add: kernel("add", include_str!("kernels/add.wgsl"), &[false, true]),
        scale: kernel("scale", include_str!("kernels/scale.wgsl"), &[false]),
    }
}
