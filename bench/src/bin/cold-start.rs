//! Cold start: for each release binary given, the time from spawning the process to its first
//! `GET /2018-06-01/runtime/invocation/next` (ready for its first event), against a stand-in for
//! the Lambda Runtime API on loopback. Runs interleave the binaries, so every binary, the
//! hello-world baseline included, sees the same machine state. Writes JSON (microseconds).
//!
//! `cold-start --runs N --out FILE BINARY...`
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Microseconds from spawn to the runtime's first request for an event.
fn one_start(listener: &TcpListener, binary: &Path) -> Result<u128, Error> {
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function")
        .to_owned();
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        // Lambda gives every function its region and role credentials in the environment; without
        // them the SDK would look for a region on the instance metadata service at init.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        // template.yaml's Globals give every function the webhook-deliveries queue's URL (the
        // webhook functions need it at init); a URL, so nothing is looked up.
        .env(
            "WEBHOOK_DELIVERIES_QUEUE",
            "https://sqs.us-east-1.amazonaws.com/123456789012/bench-webhook-deliveries",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = started + Duration::from_secs(20);
    let result = loop {
        match listener.accept() {
            Ok((mut socket, _)) => {
                socket.set_nonblocking(false)?;
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(buf.get(..n).unwrap_or_default());
                }
                let elapsed = started.elapsed().as_micros();
                let _ = socket.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
                break if seen.starts_with(b"GET /2018-06-01/runtime/invocation/next") {
                    Ok(elapsed)
                } else {
                    Err(format!("{name}: unexpected first request {:?}", String::from_utf8_lossy(&seen)).into())
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait()? {
                    break Err(format!("{name} exited before asking for an event: {status}").into());
                }
                if Instant::now() > deadline {
                    break Err(format!("{name} did not ask for an event within 20 s").into());
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(e) => break Err(e.into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = arg(&args, "--runs").unwrap_or_else(|| "15".to_owned()).parse()?;
    let out = arg(&args, "--out").ok_or("--out FILE is required")?;
    let binaries: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--")
                && !args
                    .get(i.wrapping_sub(1))
                    .is_some_and(|p| p == "--runs" || p == "--out")
        })
        .map(|(_, a)| a)
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let mut samples: Vec<Vec<u128>> = vec![Vec::new(); binaries.len()];
    for _ in 0..runs {
        for (i, b) in binaries.iter().enumerate() {
            let t = one_start(&listener, Path::new(b))?;
            if let Some(s) = samples.get_mut(i) {
                s.push(t);
            }
        }
    }
    let report: Vec<serde_json::Value> = binaries
        .iter()
        .zip(samples)
        .map(|(b, mut s)| {
            s.sort_unstable();
            let name = Path::new(b)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            serde_json::json!({"binary": name, "median_us": s.get(s.len() / 2), "runs_us": s})
        })
        .collect();
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
