//! Never slow on hostile input: for each pathological shape (many
//! parameters, many header fields, very long lines, many boundaries, deep
//! nesting, many encoded words, ...), the input is doubled five times and
//! the dissection must not take more than linearly longer.
//!
//! Robust on a loaded machine, not a benchmark: the clock is the thread's
//! own CPU time (time spent waiting for a core does not count), each size
//! is timed several times and the fastest run kept (noise only ever adds
//! time), the smallest size is grown until it takes a millisecond
//! (so timer resolution and fixed costs do not decide), and the verdict is
//! the median of the growth exponents of the five doublings: 1.0 is
//! linear, 2.0 quadratic; anything up to 1.5 passes. A shape that fails is measured
//! again, twice: a real quadratic path fails every time, a burst of load
//! does not repeat itself three times in a row.

use std::time::Duration;

use mailbot::dissect::{Dissection, Options, dissect_bytes};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The fastest of `runs` dissections of `raw`.
fn fastest(raw: &[u8], runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let start = thread_cpu();
            let d = dissect_bytes(raw, &Options::all());
            let spent = thread_cpu() - start;
            drop(d);
            spent
        })
        .min()
        .unwrap_or_default()
}

/// A pathological shape: a message made of `n` repetitions of something,
/// and a check that the dissector really met `n` of it (so a shape that
/// silently stops being hostile fails instead of passing).
struct Shape {
    name: &'static str,
    make: fn(usize) -> Vec<u8>,
    check: fn(&Dissection, usize) -> bool,
}

/// Smallest size whose fastest run takes at least this long.
const MIN_BASE: Duration = Duration::from_millis(1);
/// Largest input the calibration may grow to: inputs stay within a few
/// MiB, where the cost per byte of memory does not itself change with
/// the size (page faults of fresh allocations, caches).
const MAX_BASE_BYTES: usize = 256 << 10;
const RUNS: usize = 5;
/// The middle between linear (1) and quadratic (2): a doubled input may
/// take at most 2.8 times as long.
const MAX_EXPONENT: f64 = 1.5;

/// How many times the size doubles.
const DOUBLINGS: u32 = 5;

/// The growth exponent of the dissection time of `shape` from `n` to
/// `32n`: the median of the five doublings' exponents, so that one step in
/// the cost of memory (an allocation that crosses the size where the
/// allocator starts to map fresh pages, a working set that leaves a
/// cache) cannot decide alone, while a quadratic path shows in every
/// doubling.
fn exponent(shape: &Shape, n: usize) -> (f64, Vec<(usize, Duration)>) {
    let times: Vec<(usize, Duration)> = (0..=DOUBLINGS)
        .map(|k| n << k)
        .map(|k| (k, fastest(&(shape.make)(k), RUNS)))
        .collect();
    let mut steps: Vec<f64> = times
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0].1.as_secs_f64(), w[1].1.as_secs_f64());
            (b.max(1e-9) / a.max(1e-9)).log2()
        })
        .collect();
    steps.sort_by(f64::total_cmp);
    (steps[steps.len() / 2], times)
}

fn calibrate(shape: &Shape) -> usize {
    let mut n = 16;
    loop {
        let raw = (shape.make)(n);
        if raw.len() >= MAX_BASE_BYTES || fastest(&raw, 3) >= MIN_BASE {
            return n;
        }
        n *= 2;
    }
}

/// None when `shape` scales linearly, else what was measured.
fn superlinear(shape: &Shape) -> Option<String> {
    let probe = (shape.make)(64);
    let d = dissect_bytes(&probe, &Options::all());
    if !(shape.check)(&d, 64) {
        return Some(format!("{}: the shape is not what it claims", shape.name));
    }
    let n = calibrate(shape);
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let (e, times) = exponent(shape, n);
        if e <= MAX_EXPONENT {
            println!("{}: exponent {e:.2} from {times:?}", shape.name);
            return None;
        }
        attempts.push(format!("exponent {e:.2} from {times:?}"));
    }
    Some(format!(
        "{}: time grows faster than linearly (1 is linear, 2 quadratic): {}",
        shape.name,
        attempts.join("; ")
    ))
}

fn repeat(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(f).collect()
}

fn multipart(parts: &str) -> Vec<u8> {
    format!("Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n").into_bytes()
}

fn attachment_names(d: &Dissection) -> Vec<&str> {
    d.attachments.iter().map(|a| a.file_name.as_str()).collect()
}

/// A minimal TNEF stream: `n` attachments of a few bytes each.
fn tnef_stream(n: usize) -> Vec<u8> {
    fn attribute(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) {
        out.push(level);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend_from_slice(&sum.to_le_bytes());
    }
    let mut out = 0x223E_9F78u32.to_le_bytes().to_vec();
    out.extend_from_slice(&[0, 0]);
    for i in 0..n {
        attribute(&mut out, 2, 0x0006_9002, &[1, 0, 0, 0]);
        attribute(&mut out, 2, 0x0001_8010, format!("F{i}.TXT\0").as_bytes());
        attribute(&mut out, 2, 0x0006_800F, b"data");
    }
    out
}

fn base64(data: &[u8]) -> String {
    mailbot::compose::base64_encode(data)
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "many parameters",
        make: |n| {
            let params = repeat(n, |i| format!("; p{i}=\"v{i}\""));
            format!("Content-Type: application/octet-stream; name=a.bin{params}\n\ndata")
                .into_bytes()
        },
        check: |d, _| attachment_names(d) == ["a.bin"],
    },
    Shape {
        name: "many duplicate parameters",
        make: |n| {
            let params = repeat(n, |_| "; filename=a.bin".to_string());
            format!("Content-Disposition: attachment{params}\n\ndata").into_bytes()
        },
        check: |d, n| d.defects.len() == n - 1 && attachment_names(d) == ["a.bin"],
    },
    Shape {
        name: "many RFC 2231 sections",
        make: |n| {
            let params = repeat(n, |i| format!("; filename*{i}*=a"));
            format!("Content-Disposition: attachment{params}\n\ndata").into_bytes()
        },
        check: |d, n| d.attachments[0].declared_name.as_ref().map(String::len) == Some(n),
    },
    Shape {
        name: "many header fields",
        make: |n| {
            let fields = repeat(n, |i| format!("X-Field-{i}: value {i}\n"));
            format!("Subject: s\n{fields}\nbody\n").into_bytes()
        },
        check: |d, n| d.headers.raw.fields.len() == n + 1,
    },
    Shape {
        name: "many header fields in a part",
        make: |n| {
            let fields = repeat(n, |i| format!("X-Field-{i}: value {i}\n"));
            multipart(&format!(
                "--b\n{fields}Content-Type: application/pdf; name=a.pdf\n\n%PDF-1.4\n"
            ))
        },
        check: |d, _| attachment_names(d) == ["a.pdf"],
    },
    Shape {
        name: "many folded lines",
        make: |n| {
            let folds = repeat(n, |i| format!("\n word{i}"));
            format!("Subject: start{folds}\nContent-Type: text/plain\n\nbody\n").into_bytes()
        },
        check: |d, _| {
            d.headers
                .subject
                .as_deref()
                .is_some_and(|s| s.ends_with("word63"))
        },
    },
    Shape {
        name: "very long header line",
        make: |n| {
            let words = repeat(n, |_| "abcdefgh ".to_string());
            format!("Subject: {words}\n\nbody\n").into_bytes()
        },
        check: |d, n| d.headers.subject.as_ref().map(String::len) == Some(9 * n - 1),
    },
    Shape {
        name: "very long quoted file name",
        make: |n| {
            let name = repeat(n, |_| "abcdefgh".to_string());
            format!("Content-Type: application/pdf; name=\"{name}.pdf\"\n\n%PDF-1.4\n").into_bytes()
        },
        check: |d, _| attachment_names(d)[0].ends_with(".pdf"),
    },
    Shape {
        name: "very long body line",
        make: |n| {
            let line = repeat(n, |_| "abcdefgh".to_string());
            format!("Subject: s\n\n{line}").into_bytes()
        },
        check: |d, n| d.body_text.as_ref().map(String::len) == Some(8 * n),
    },
    Shape {
        name: "very long base64 line",
        make: |n| {
            let data = repeat(n, |_| "%PDF-1.4 ".to_string());
            let encoded = base64(data.as_bytes()).replace(['\r', '\n'], "");
            format!("Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{encoded}")
                .into_bytes()
        },
        check: |d, n| d.attachments[0].data.len() == 9 * n,
    },
    Shape {
        name: "very long quoted-printable line",
        make: |n| {
            let line = repeat(n, |_| "=41 \t=\n=3D".to_string());
            format!("Subject: s\nContent-Transfer-Encoding: quoted-printable\n\n{line}")
                .into_bytes()
        },
        check: |d, _| {
            d.body_text
                .as_deref()
                .is_some_and(|t| t.starts_with("A \t=A"))
        },
    },
    Shape {
        name: "many parts",
        make: |n| {
            multipart(&repeat(n, |i| {
                format!("--b\nContent-Type: image/png; name=p{i}.png\n\n\x7fPNG\n")
            }))
        },
        check: |d, n| d.attachments.len() == n,
    },
    Shape {
        name: "many parts with the same name",
        make: |n| {
            multipart(&repeat(n, |_| {
                "--b\nContent-Type: image/png; name=p.png\n\n\x7fPNG\n".to_string()
            }))
        },
        check: |d, n| d.attachments.len() == n,
    },
    Shape {
        name: "many lines that start like the boundary",
        make: |n| multipart(&format!("--b\n\n{}", repeat(n, |_| "--bx\n".to_string()))),
        check: |d, n| d.body_text.as_ref().map(|t| t.lines().count()) == Some(n),
    },
    Shape {
        name: "many close-delimiter look-alikes",
        make: |n| {
            let inner = repeat(n, |i| format!("--b--x{i}\n"));
            format!("Content-Type: multipart/mixed; boundary=\"b--x0\"\n\n{inner}").into_bytes()
        },
        check: |d, _| !d.parts.is_empty(),
    },
    Shape {
        name: "many boundaries guessed",
        make: |n| {
            let parts = repeat(n, |i| {
                format!("--zz\nContent-Type: image/png; name=p{i}.png\n\nx\n")
            });
            format!("Content-Type: multipart/mixed\n\n{parts}--zz--\n").into_bytes()
        },
        check: |d, n| d.attachments.len() == n,
    },
    Shape {
        name: "deeply nested multiparts",
        make: |n| {
            let mut raw = String::from("Content-Type: multipart/mixed; boundary=b0\n\n");
            for i in 0..n {
                raw.push_str(&format!(
                    "--b{i}\n\ntext {i}\n--b{i}\nContent-Type: multipart/mixed; boundary=b{}\n\n",
                    i + 1
                ));
            }
            raw.push_str("--leaf\n");
            raw.into_bytes()
        },
        check: |d, _| {
            d.defects
                .iter()
                .any(|x| x.kind == mailbot::mime::DefectKind::DepthLimit)
        },
    },
    Shape {
        name: "deeply nested messages",
        make: |n| {
            let mut raw = String::new();
            for _ in 0..n {
                raw.push_str("Content-Type: message/rfc822\n\n");
            }
            raw.push_str("Subject: leaf\n\nleaf\n");
            raw.into_bytes()
        },
        check: |d, _| {
            d.defects
                .iter()
                .any(|x| x.kind == mailbot::mime::DefectKind::DepthLimit)
        },
    },
    Shape {
        name: "many encoded words",
        make: |n| {
            let words = repeat(n, |_| "=?utf-8?Q?caf=C3=A9?= ".to_string());
            format!("Subject: {words}\n\nbody\n").into_bytes()
        },
        check: |d, n| d.headers.subject.as_ref().map(|s| s.chars().count()) == Some(4 * n),
    },
    Shape {
        name: "many encoded words in alternating charsets",
        make: |n| {
            let words = repeat(n, |i| {
                if i % 2 == 0 {
                    "=?utf-8?B?w6k=?= "
                } else {
                    "=?iso-8859-1?Q?=E9?= "
                }
                .to_string()
            });
            format!("Content-Type: application/pdf; name=\"{words}.pdf\"\n\n%PDF-1.4\n")
                .into_bytes()
        },
        check: |d, _| attachment_names(d)[0].starts_with("éé"),
    },
    Shape {
        name: "many encoded-word openers",
        make: |n| {
            let junk = repeat(n, |_| "=?x?q?".to_string());
            format!("Subject: {junk}\n\nbody\n").into_bytes()
        },
        check: |d, n| d.headers.subject.as_ref().map(String::len) == Some(6 * n),
    },
    Shape {
        name: "many uuencode begin lines",
        make: |n| {
            let lines = repeat(n, |i| format!("begin 644 f{i}.bin\n"));
            multipart(&format!("--b\n\n{lines}--b\n\n{lines}"))
        },
        check: |d, _| d.attachments.len() == 1,
    },
    Shape {
        name: "many TNEF attachments",
        make: |n| {
            let encoded = base64(&tnef_stream(n));
            multipart(&format!(
                "--b\nContent-Type: application/ms-tnef; name=winmail.dat\nContent-Transfer-Encoding: base64\n\n{encoded}\n"
            ))
        },
        check: |d, n| d.attachments.len() == n,
    },
];

#[test]
fn every_hostile_shape_takes_linear_time() {
    let failures: Vec<String> = SHAPES.iter().filter_map(superlinear).collect();
    assert!(
        failures.is_empty(),
        "exponent above {MAX_EXPONENT}:\n{}",
        failures.join("\n")
    );
}
