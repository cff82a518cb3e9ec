//! `outreach`: the command-line entry point. Everything is wired in the library.

fn main() -> std::process::ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime")
        .block_on(outreach::cli::main())
}
