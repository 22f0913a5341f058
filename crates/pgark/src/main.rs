//! The `pgark` command: a thin layer over the `pgark` library.
//!
//! Exit status: 0 success; 1 failure (one line on stderr says what and
//! where); 2 bad usage; 130 interrupted (SIGINT); 143 terminated (SIGTERM).
//! An interrupted dump leaves no file behind.

mod cli;

use clap::Parser;

fn main() {
    // A file-size limit (ulimit -f) must fail the write with EFBIG and take
    // the normal error path, which removes the partial archive, instead of
    // killing the process.
    // SAFETY: sets a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let args = cli::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let code = runtime.block_on(cli::run_until_signal(args));
    // Lets a blocking task finish (a demo cluster still starting is then
    // dropped, which stops and deletes it); connections are abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    std::process::exit(code);
}
