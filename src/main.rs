//! `outreach`: the command-line entry point. Everything is wired in the library.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    outreach::cli::main().await
}
