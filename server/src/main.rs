//! `tessera`: the node's entry point. Parses the configuration, sets up
//! logging and the directories, then runs the node (`server::node::run`)
//! until it is stopped (SIGINT/SIGTERM) or fails. Exit status: 0 after a
//! clean stop, 1 when the node fails, 2 for a refused configuration.

use std::process::ExitCode;

use server::config::{Config, ConfigError, VERSION};
use server::logging;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(ConfigError::Help(text)) | Err(ConfigError::Version(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(config.log_level) {
        eprintln!("tessera: {e}");
        return ExitCode::from(2);
    }
    log::info!("Tessera {VERSION} starting (pid {})", std::process::id());
    config.log_diagnostics();
    for line in config.summary().lines() {
        log::info!("{line}");
    }
    if let Err(e) = config.create_directories() {
        log::error!("{e}");
        return ExitCode::FAILURE;
    }
    match server::node::run(config) {
        Ok(()) => {
            log::info!("Tessera stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("Tessera failed: {e}");
            ExitCode::FAILURE
        }
    }
}
