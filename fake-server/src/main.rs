//! `fake-server`: see `fake-server --help`. Everything lives in the library.

fn main() -> std::process::ExitCode {
    fake_server::main_with_args(std::env::args_os().skip(1))
}
