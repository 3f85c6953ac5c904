//! The `livefire` binary: parse the command line, hand it to the library, exit.

fn main() -> std::process::ExitCode {
    livefire::main_with_args(std::env::args_os())
}
