//! `command-service` as a separate process needs the NATS transport, which this version does not
//! have yet; it says so instead of pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "command-service: running as a separate process needs NATS_URL and the NATS transport, \
         which this version does not have yet; run the all-in-one server with 'cargo run --release'"
    );
    ExitCode::from(2)
}
