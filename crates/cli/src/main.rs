use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use reelay::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "reelay",
    version,
    about = "Self-hosted gateway for AI video generation"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "REELAY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, media).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Address to listen on.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run the upstream simulator on its own.
    Sim {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// Seconds a task runs.
        #[arg(long, default_value_t = 5.0)]
        run_seconds: f64,
        /// Require this bearer key.
        #[arg(long, env = "REELAY_SIM_API_KEY")]
        api_key: Option<String>,
        /// Tasks beyond this many at once wait as THROTTLED.
        #[arg(long)]
        max_concurrent: Option<usize>,
        /// Probability a task fails.
        #[arg(long, default_value_t = 0.0)]
        failure_rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Load a running reelay: submit tasks at a fixed concurrency and report latency and throughput.
    Bench {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key to submit with.
        #[arg(long, env = "REELAY_BENCH_KEY")]
        key: String,
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Also wait for every task to finish and report end-to-end throughput.
        #[arg(long)]
        wait: bool,
    },
    /// Accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account and its first API key (printed once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 0)]
        credits: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create another API key for an account (printed once).
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Show a task and its events.
    Show { id: String },
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("reelay: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        ..Overrides::default()
    };
    if let Command::Serve { listen } = &cli.command {
        overrides.listen = listen.clone();
    }
    let load = || Config::load(cli.config.as_deref(), &overrides).map_err(anyhow::Error::msg);
    match cli.command {
        Command::Serve { .. } => {
            let config = load()?;
            init_tracing(&config.log);
            let server = reelay::serve::start(config.clone()).await?;
            if let Some(key) = &server.first_key {
                println!("Created account `default`. Its API key, shown only this once:");
                println!("  {key}");
            }
            if let Some(token) = &server.generated_admin_token {
                println!("Generated an admin token (for /admin/v1 and admin tools), shown only this once:");
                println!("  {token}");
                println!("Set admin_token / REELAY_ADMIN_TOKEN to choose your own.");
            }
            println!(
                "reelay listening on http://{} (data in {})",
                server.addr,
                config.data_dir.display()
            );
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = wait_forever() => {}
            }
            server.stop().await;
        }
        Command::Sim {
            listen,
            run_seconds,
            api_key,
            max_concurrent,
            failure_rate,
            seed,
        } => {
            init_tracing("info");
            let handle = reelay_sim::spawn(
                reelay_sim::SimConfig {
                    run_seconds,
                    api_key,
                    max_concurrent,
                    failure_rate,
                    seed,
                    ..Default::default()
                },
                listen,
            )
            .await?;
            println!("reelay sim listening on {}", handle.base_url());
            shutdown_signal().await;
        }
        Command::Bench {
            url,
            key,
            tasks,
            concurrency,
            wait,
        } => {
            let report = reelay::bench::run(reelay::bench::BenchArgs {
                url,
                key,
                tasks,
                concurrency,
                wait,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Account {
            command:
                AccountCommand::Create {
                    name,
                    credits,
                    json,
                },
        } => reelay::admin::account_create(&load()?, &name, credits, json).await?,
        Command::Key {
            command: KeyCommand::Create { account, json },
        } => reelay::admin::key_create(&load()?, &account, json).await?,
        Command::Task {
            command: TaskCommand::Show { id },
        } => reelay::admin::task_show(&load()?, &id).await?,
    }
    Ok(())
}

async fn wait_forever() {
    std::future::pending::<()>().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
