//! The `voxd` binary: the daemon (`voxd serve`) and its command-line client.

fn main() -> std::process::ExitCode {
    // Before any thread: setting the environment is only safe then.
    voxd::onnx::opt_out_of_telemetry();
    voxd::cli::main()
}
