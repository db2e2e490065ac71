//! The `voxd` binary: the daemon (`voxd serve`) and its command-line client.

fn main() -> std::process::ExitCode {
    voxd::cli::main()
}
