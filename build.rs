//! Compiles `kernels-gpu` to PTX with rustc's `nvptx64-nvidia-cuda` target
//! and leaves it at `$OUT_DIR/streamtopk.ptx` for `include_str!`, with the
//! register caps rustc has no attribute for written into the kernels'
//! headers (`.maxnreg`, as CUDA C's `__launch_bounds__` would).
//!
//! `STREAMTOPK_ARCH` picks the target architecture (default `sm_90`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use streamtopk_kernels::params::{FILTER_MAX_REGISTERS, MERGE_MAX_REGISTERS};

const TARGET: &str = "nvptx64-nvidia-cuda";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = manifest_dir.join("kernels-gpu");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let arch = env::var("STREAMTOPK_ARCH").unwrap_or_else(|_| "sm_90".to_string());
    if !arch.starts_with("sm_") || arch[3..].parse::<u32>().is_err() {
        panic!("STREAMTOPK_ARCH must look like sm_90 or sm_80, got {arch:?}");
    }

    println!("cargo:rerun-if-env-changed=STREAMTOPK_ARCH");
    println!("cargo:rerun-if-changed=kernels-gpu/src");
    println!("cargo:rerun-if-changed=kernels-gpu/Cargo.toml");
    println!("cargo:rerun-if-changed=rust-toolchain.toml");

    let target_dir = out_dir.join("kernels-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&kernels)
        .args([
            "rustc",
            "--release",
            "--lib",
            "--crate-type",
            "cdylib",
            "-Zbuild-std=core",
        ])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_TARGET_NVPTX64_NVIDIA_CUDA_RUSTFLAGS",
            format!("-Ctarget-cpu={arch} -Ctarget-feature=+ptx81"),
        );
    // Flags meant for the host build must not reach the device build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo for the kernels: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("rust-src") || stderr.contains("can't find crate for `core`")
        {
            "the rust-src component is missing: run `rustup toolchain install` in the repository root (it reads rust-toolchain.toml)"
        } else if stderr.contains("llvm-bitcode-linker") || stderr.contains("linker") {
            "the llvm-bitcode-linker / llvm-tools components are missing: run `rustup toolchain install` in the repository root (it reads rust-toolchain.toml)"
        } else if stderr.contains("-Z") || stderr.contains("nightly") {
            "the kernels need the nightly toolchain of rust-toolchain.toml: run `rustup toolchain install` in the repository root"
        } else {
            "see the compiler output above"
        };
        panic!("building the PTX kernels failed ({hint}):\n{stderr}");
    }
    let ptx = target_dir
        .join(TARGET)
        .join("release")
        .join("streamtopk_kernels.ptx");
    let ptx = std::fs::read_to_string(&ptx)
        .unwrap_or_else(|e| panic!("kernel build produced no PTX at {}: {e}", ptx.display()));
    let ptx = cap_registers(&ptx, "topk_filter_", FILTER_MAX_REGISTERS);
    let ptx = cap_registers(&ptx, "topk_merge_", MERGE_MAX_REGISTERS);
    std::fs::write(out_dir.join("streamtopk.ptx"), ptx).expect("writing the PTX to OUT_DIR");
}

/// `ptx` with `.maxnreg registers` after the parameter list of every entry
/// whose name starts with `prefix` (there must be one).
fn cap_registers(ptx: &str, prefix: &str, registers: u32) -> String {
    let mut out = String::with_capacity(ptx.len() + 64);
    let (mut in_header, mut capped) = (false, 0);
    for line in ptx.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(name) = line.strip_prefix(".visible .entry ") {
            in_header = name.starts_with(prefix);
        }
        if in_header && line.starts_with(')') {
            out.push_str(&format!(".maxnreg {registers}\n"));
            (in_header, capped) = (false, capped + 1);
        }
    }
    assert!(capped > 0, "no kernel named {prefix}* in the PTX");
    out
}
