//! `tessera-stress`: cassandra-stress's command shape over the Rust `scylla` driver.
//! `tessera-stress help` lists the commands and options.

use tessera_bench::settings::{Settings, HELP};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::parse(&args) {
        Ok(Some(s)) => s,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(e) => {
            eprintln!("tessera-stress: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera-stress: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let status = runtime.block_on(tessera_bench::stress::run(settings));
    std::process::exit(status);
}
