//! `sim-board`: see `sim-board --help`. Everything lives in the library.

fn main() -> std::process::ExitCode {
    sim_board::main_with_args(std::env::args_os().skip(1))
}
