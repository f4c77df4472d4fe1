//! The `fake-server` command line.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Fault-serving OTA update server for otarig: serves signed releases, and misbehaves on
/// purpose according to fault rules.
#[derive(Debug, Parser)]
#[command(name = "fake-server", version, about)]
struct Args {
    /// Directory holding the images (nothing outside it is ever served).
    #[arg(long)]
    images: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Fault rules file (YAML, `faults: [...]`).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Bearer token for the control API (required when not listening on loopback).
    #[arg(long, env = "FAKE_SERVER_TOKEN")]
    token: Option<String>,
    /// Release signing key (release.key from `rig keygen`), needed to publish releases.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Publish releases at start: NAME=FILE (repeatable; the last one is offered).
    #[arg(long = "publish", value_name = "NAME=FILE")]
    publish: Vec<String>,
    /// Manifest chunk size in bytes.
    #[arg(long, default_value_t = 4096)]
    chunk_size: u32,
}

/// Runs the binary with `args` (without the program name).
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args =
        match Args::try_parse_from(std::iter::once(OsString::from("fake-server")).chain(args)) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-server: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(async move {
        let handle = match crate::start(config).await {
            Ok(h) => h,
            Err(e @ (crate::Error::NeedsToken(_) | crate::Error::Images { .. })) => {
                eprintln!("fake-server: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("fake-server: {e}");
                return ExitCode::from(3);
            }
        };
        for p in &args.publish {
            let Some((name, file)) = p.split_once('=') else {
                eprintln!("fake-server: --publish {p}: expected NAME=FILE");
                return ExitCode::from(2);
            };
            if let Err(e) = handle.publish_image(name, file) {
                eprintln!("fake-server: --publish {p}: {e}");
                return ExitCode::from(2);
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", handle.url());
        let _ = out.flush();
        drop(out);
        wait_for_signal().await;
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn config(args: &Args) -> Result<crate::Config, String> {
    match std::fs::metadata(&args.images) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "--images {}: not a directory (give the directory that holds the images)",
                args.images.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "--images {}: cannot open the image directory: {e}",
                args.images.display()
            ));
        }
    }
    let mut cfg = crate::Config::new(&args.images);
    cfg.listen = args.listen;
    cfg.token = args.token.clone();
    cfg.chunk_size = args.chunk_size;
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        return Err(format!(
            "refusing to listen on {} without --token: the control API would be open to the network",
            args.listen
        ));
    }
    if let Some(path) = &args.faults {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.faults = crate::faults::parse_faults_yaml(&text, &path.display().to_string())
            .map_err(|e| e.to_string())?;
    }
    if let Some(path) = &args.key {
        cfg.signing_key = Some(ota_core::tools::read_signing_key(path).map_err(|e| e.to_string())?);
    }
    Ok(cfg)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
