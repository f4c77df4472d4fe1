//! `rig`: see `rig --help`. Everything lives in the library; this only runs it.

fn main() -> std::process::ExitCode {
    rig::cli::main_impl()
}
