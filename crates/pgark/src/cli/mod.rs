//! Command-line parsing and the commands, each a call into the library.

mod args;
mod commands;
mod progress;

pub use args::Args;
use tokio::signal::unix::{signal, SignalKind};

/// Runs the command; a SIGINT or SIGTERM drops it (which removes a partial
/// archive) and exits 130 or 143.
pub async fn run_until_signal(args: Args) -> i32 {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return report(commands::run(args).await);
    };
    tokio::select! {
        r = commands::run(args) => report(r),
        _ = int.recv() => {
            eprintln!("pgark: interrupted; nothing was left half-written");
            130
        }
        _ = term.recv() => {
            eprintln!("pgark: terminated; nothing was left half-written");
            143
        }
    }
}

fn report(result: Result<(), pgark::Error>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            commands::print_failures(&e);
            eprintln!("pgark: error: {e}");
            1
        }
    }
}
