//! `tessera`: the node's entry point. Parses the configuration, sets up
//! logging and the directories, then runs the node until it is stopped
//! (SIGINT/SIGTERM) or fails. Exit status: 0 after a clean stop, 1 when the
//! node fails, 2 for a refused configuration.

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
    match run(config) {
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

/// Until `server::node` lands: start the shards and the admin API, and wait
/// for a stop signal.
fn run(config: Config) -> Result<(), String> {
    use server::admin::{register_builtin_routes, AdminLimits, AdminServer, Router};
    use server::shard::{signals, ShardConfig, ShardContext, ShardRuntime};
    use std::net::SocketAddr;

    let api_addr = SocketAddr::new(config.api_address, config.api_port);
    let cfg = config.clone();
    let runtime = ShardRuntime::start(
        ShardConfig::from_config(&config),
        move |ctx: ShardContext| {
            let config = cfg.clone();
            async move {
                if ctx.id() != 0 {
                    ctx.stopped().await;
                    return Ok(());
                }
                let mut router = Router::new();
                register_builtin_routes(&mut router, &config, ctx.shards());
                let admin = match AdminServer::bind(api_addr, router, AdminLimits::default()) {
                    Ok(a) => a,
                    Err(e) => {
                        ctx.shards().stop();
                        return Err(e.to_string());
                    }
                };
                log::info!("admin API listening on {api_addr}");
                admin.serve(ctx.stopped()).await;
                Ok(())
            }
        },
    )
    .map_err(|e| e.to_string())?;
    let watcher = signals::install(runtime.shards().stop_latch())
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    log::info!("{} shards running; stop with SIGINT or SIGTERM", config.smp);
    let results = runtime.join().map_err(|e| e.to_string());
    watcher.close();
    results?.into_iter().collect()
}
