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
    // One thread for all the async work: COPY streams are I/O, and the CPU
    // work (compression, hashing, encryption) runs on the archive's own
    // threads. A multi-threaded runtime handed each socket read between
    // workers and spent a fifth of the client's CPU switching threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let code = runtime.block_on(cli::run_until_signal(args));
    // Lets a blocking task finish (a demo cluster still starting is then
    // dropped, which stops and deletes it); connections are abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    std::process::exit(code);
}
