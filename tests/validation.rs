//! CPU tests (CI) of input validation: every bad config, file and command
//! line gets a typed error naming the bad value, and the CLI exits non-zero
//! with that message without panicking (all before any GPU is touched).

use std::path::PathBuf;
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};
use streamtopk::io::{self, IoError};
use streamtopk::plan::{MAX_BATCH, MAX_K, MAX_VOCAB};
use streamtopk::{DType, Error, TopKConfig};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("streamtopk-validation-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_tensor(path: &PathBuf, name: &str, dtype: Dtype, shape: Vec<usize>) {
    let bytes = vec![0u8; shape.iter().product::<usize>() * dtype.size()];
    let t = TensorView::new(dtype, shape, &bytes).unwrap();
    std::fs::write(path, safetensors::serialize([(name, t)], &None).unwrap()).unwrap();
}

#[test]
fn every_bad_config_names_the_value_and_the_range() {
    let plan = |b, v, k| TopKConfig::new(b, v, k).plan().unwrap_err();
    let cases: Vec<(Error, &[&str])> = vec![
        (plan(1, 100, 0), &["k", "0"]),
        (plan(1, 100, 101), &["101", "1..=100"]),
        (plan(0, 100, 1), &["batch", "0"]),
        (plan(MAX_BATCH + 1, 100, 1), &["65536", "65535"]),
        (plan(1, 0, 1), &["vocab", "0"]),
        (plan(1, MAX_VOCAB + 1, 1), &["2147483648", "2147483647"]),
        (plan(1, 1 << 20, MAX_K + 1), &["4097", "4096"]),
        (plan(1, 1 << 20, 4096), &["1048576", "4096"]),
    ];
    for (e, needles) in cases {
        let msg = e.to_string();
        for n in needles {
            assert!(msg.contains(n), "{msg:?} does not name {n:?}");
        }
    }
    assert!(matches!(plan(1, 100, 0), Error::KZero));
    assert!(matches!(
        plan(MAX_BATCH + 1, 100, 1),
        Error::BatchAboveLimit { .. }
    ));
    assert!(matches!(
        plan(1, MAX_VOCAB + 1, 1),
        Error::VocabAboveLimit { .. }
    ));
    assert!(matches!(
        plan(1, 1 << 20, 4096),
        Error::ShapeTooLarge { .. }
    ));
    assert!(TopKConfig::new(MAX_BATCH, 100, 1).plan().is_ok());
}

#[test]
fn k_up_to_2048_plans_at_every_vocab_and_dtype() {
    for dtype in [DType::BF16, DType::F16, DType::F32] {
        for vocab in (2048..=300_000).step_by(4093).chain([300_000]) {
            for k in [1024, 1500, 2047, 2048] {
                let c = TopKConfig::new(1, vocab, k).with_dtype(dtype);
                assert!(
                    c.plan().is_ok(),
                    "{dtype:?} vocab {vocab} k {k}: {:?}",
                    c.plan()
                );
            }
        }
    }
}

#[test]
fn malformed_safetensors_files_are_typed_errors() {
    let d = dir();
    let f = d.join("wrong-dtype.safetensors");
    write_tensor(&f, "logits", Dtype::I32, vec![2, 3]);
    let Err(e) = io::read_logits(&f) else {
        panic!("read")
    };
    assert!(matches!(e, IoError::BadDtype { .. }), "{e}");
    assert!(e.to_string().contains("I32"), "{e}");

    let f = d.join("rank3.safetensors");
    write_tensor(&f, "logits", Dtype::BF16, vec![1, 2, 3]);
    let Err(e) = io::read_logits(&f) else {
        panic!("read")
    };
    assert!(matches!(e, IoError::BadShape { .. }), "{e}");
    assert!(e.to_string().contains("[1, 2, 3]"), "{e}");

    let f = d.join("empty-row.safetensors");
    write_tensor(&f, "logits", Dtype::F32, vec![2, 0]);
    assert!(matches!(io::read_logits(&f), Err(IoError::BadShape { .. })));

    // Truncated: a valid file cut short in its data and in its header.
    let f = d.join("truncated.safetensors");
    write_tensor(&f, "logits", Dtype::F16, vec![4, 100]);
    let whole = std::fs::read(&f).unwrap();
    for cut in [whole.len() - 10, 20, 4] {
        std::fs::write(&f, &whole[..cut]).unwrap();
        let Err(e) = io::read_logits(&f) else {
            panic!("read")
        };
        assert!(matches!(e, IoError::Format { .. }), "cut at {cut}: {e}");
    }
    let e = io::parse_dtype("int8").unwrap_err();
    assert!(e.to_string().contains("int8") && e.to_string().contains("bfloat16"));
}

/// The benchmark binary: `$STREAMTOPK_BENCH_BIN` (test binaries carried to
/// another machine), else the one cargo built.
fn bench_bin() -> String {
    std::env::var("STREAMTOPK_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_topk_benchmark").to_string())
}

/// Run the benchmark binary; its exit code and stderr.
fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(bench_bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn cli_rejects_bad_input_with_the_message_and_no_panic() {
    let d = dir();
    let wrong = d.join("cli-wrong-dtype.safetensors");
    write_tensor(&wrong, "logits", Dtype::I64, vec![1, 8]);
    let missing = d.join("cli-missing.safetensors");
    write_tensor(&missing, "scores", Dtype::BF16, vec![1, 8]);
    let garbage = d.join("cli-garbage.safetensors");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7f{").unwrap();
    let small = d.join("cli-small.safetensors");
    write_tensor(&small, "logits", Dtype::BF16, vec![2, 8]);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--top-k".into(), "0".into()], "k must be at least 1"),
        (vec!["--top-k".into(), "60000".into()], "1..=50304"),
        (
            vec!["--batch".into(), "0".into()],
            "batch must be at least 1",
        ),
        (
            vec![
                "--batch".into(),
                "70000".into(),
                "--vocab".into(),
                "8".into(),
                "--top-k".into(),
                "1".into(),
            ],
            "65535",
        ),
        (
            vec!["--vocab".into(), "0".into()],
            "vocab must be at least 1",
        ),
        (vec!["--iters".into(), "0".into()], "--iters"),
        (vec!["--dtype".into(), "int8".into()], "possible values"),
        (vec!["--top-k=-3".into()], "invalid value"),
        (vec!["--input".into(), path(&d.join("nope"))], "cannot read"),
        (vec!["--input".into(), path(&wrong)], "dtype I64"),
        (
            vec!["--input".into(), path(&missing)],
            "no tensor named \"logits\"",
        ),
        (
            vec!["--input".into(), path(&garbage)],
            "not a valid safetensors file",
        ),
        (
            vec!["--input".into(), path(&small), "--top-k".into(), "9".into()],
            "k = 9 is larger than the vocabulary (8)",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = cli(&args);
        assert_ne!(code, 0, "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
    let out = Command::new(bench_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--top-k"));
}
