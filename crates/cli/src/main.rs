use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use reelay::admin;
use reelay::config::{Config, Overrides};
use reelay_api::admin::ops::{AccountChange, Credits};

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
    /// Apply the database migrations and exit (`serve` applies them too; on PostgreSQL several
    /// instances may migrate at once, the migrator holds an advisory lock).
    Migrate,
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
        #[command(flatten)]
        video: reelay::bench::SimVideo,
    },
    /// The load tool: submits (and with `--mode e2e` waits for every terminal callback),
    /// then reports throughput, latency, errors by cause, upstream requests per task and the
    /// server's peak RSS and CPU. Without `--url` it starts its own server, simulator and
    /// callback receiver. Bounded: `--tasks` and `--max-seconds`.
    Bench {
        /// Running servers (comma-separated, round-robin); default: start our own.
        #[arg(long)]
        url: Option<String>,
        /// API key, with `--url`.
        #[arg(long, env = "REELAY_BENCH_KEY")]
        key: Option<String>,
        #[arg(long, default_value_t = 1000)]
        tasks: usize,
        /// Connections in flight at most.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Open loop: offer this many submits per second (latency counted from each one's
        /// slot in the schedule); default: closed loop, each connection sends again at once.
        #[arg(long, value_parser = positive_rate)]
        rate: Option<f64>,
        #[arg(long, value_enum, default_value = "submit")]
        mode: reelay::bench::Mode,
        #[arg(long, value_enum, default_value = "runway")]
        dialect: reelay::bench::Dialect,
        #[arg(long, default_value_t = 300)]
        max_seconds: u64,
        /// With `--url`: the server's process id, for its RSS and CPU.
        #[arg(long)]
        pid: Option<u32>,
        /// With `--url`: the simulator behind the servers, for upstream request counts.
        #[arg(long)]
        sim_url: Option<String>,
        /// Our own simulator: seconds each task runs.
        #[arg(long, default_value_t = 0.0)]
        sim_run_seconds: f64,
        /// Our own server: derive posters and last frames (ffmpeg).
        #[arg(long)]
        frames: bool,
        /// Our own server: this database (e.g. postgres://...) instead of a temporary SQLite.
        #[arg(long)]
        database_url: Option<String>,
        #[command(flatten)]
        video: reelay::bench::SimVideo,
        /// After the submits, watch the tasks in flight this long (with --poll-seconds, rounded
        /// up to whole intervals): upstream polls per second against the schedule, the
        /// server's CPU per poll and its RSS.
        #[arg(long)]
        hold_seconds: Option<u64>,
        /// Our own server: poll every task at this fixed interval, so the due rate is
        /// tasks / interval.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
        poll_seconds: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Add credits to an account.
    #[command(allow_negative_numbers = true)]
    Topup {
        #[arg(long)]
        account: String,
        /// Whole credits, positive.
        #[arg(long)]
        amount: Credits,
        /// Kept in the ledger (default "top-up").
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Correct an account's balance up or down (`--amount=-5`), with a reason for the ledger.
    #[command(allow_negative_numbers = true)]
    Adjust {
        #[arg(long)]
        account: String,
        /// Whole credits, non-zero; negative takes credits away (never below zero).
        #[arg(long)]
        amount: Credits,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The credit ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Channels (upstreams): list, show, add, change, switch on and off, remove. Changes are
    /// stored; running instances apply them within `engine.channels_reload_ms`.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Webhooks: signing secrets, the outbox of a task, redelivery.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// The configuration (`--config`, `REELAY_*` variables, defaults).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the configuration as `serve` would (the file, the environment, the catalog and
    /// mapping files) and print the configuration in force, secrets masked; exits 1 naming the
    /// key at fault when it does not hold. Opens nothing: no database, no port.
    Check,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account and its first API key (printed once).
    #[command(allow_negative_numbers = true)]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "0")]
        credits: Credits,
        /// Prices for this account are multiplied by this.
        #[arg(long)]
        price_multiplier: Option<f64>,
        /// Live tasks this account may have at once (default: the configured limit).
        #[arg(long)]
        max_active_tasks: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// List accounts with their balances.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one account.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an account's price multiplier, live-task cap or media retention.
    #[command(allow_negative_numbers = true)]
    Set {
        id: String,
        #[arg(long)]
        price_multiplier: Option<f64>,
        #[arg(long, conflicts_with = "no_max_active_tasks")]
        max_active_tasks: Option<i64>,
        /// Back to the configured default cap.
        #[arg(long)]
        no_max_active_tasks: bool,
        /// Keep this account's media this long (seconds) instead of `retention_seconds`.
        #[arg(long, conflicts_with = "no_retention_seconds")]
        retention_seconds: Option<i64>,
        /// Back to the configured media retention.
        #[arg(long)]
        no_retention_seconds: bool,
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
    /// List an account's keys (prefixes only; secrets are never stored).
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key.
    Revoke { key_id: String },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// An account's ledger entries, newest first.
    Show {
        #[arg(long)]
        account: String,
        #[arg(long)]
        limit: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Check every balance against the ledger and every finished task's hold; exits 1 and
    /// prints each violation when there are any.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Show a task and its events.
    Show { id: String },
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Every channel: configuration (never the key), and from the running server (when
    /// `admin_token` is configured and it answers at `listen`) breaker state, in-flight count,
    /// call rates, success rate and latency percentiles.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One channel, as `list` shows it.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a channel for every instance.
    Add {
        name: String,
        /// runway, reverse, quickstart or sandbox.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        base_url: String,
        #[command(flatten)]
        fields: admin::ChannelFields,
    },
    /// Change some of a channel's fields.
    Set {
        name: String,
        #[command(flatten)]
        fields: admin::ChannelFields,
        /// Forget the channel's key.
        #[arg(long, conflicts_with_all = ["api_key_env", "api_key_stdin"])]
        clear_key: bool,
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Back in service (also after an out-of-credit stop).
    Enable { name: String },
    /// Out of service: no new tasks; the ones on it finish there.
    Disable {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a channel added here (tasks on it finish there).
    Remove { name: String },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Show an account's webhook signing secret, or rotate it.
    #[command(allow_negative_numbers = true)]
    Secret {
        #[arg(long)]
        account: String,
        /// Replace the secret; the old one keeps signing (next to the new) for the grace period.
        #[arg(long)]
        rotate: bool,
        /// Grace period of the old secret, 0 to 604800 (default webhooks.secret_grace_seconds).
        #[arg(long, requires = "rotate")]
        grace_seconds: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Set (or clear) the account's kie.ai-style callback HMAC key (quick-start dialect).
    HmacKey {
        #[arg(long)]
        account: String,
        #[arg(long, conflicts_with = "clear", required_unless_present = "clear")]
        key: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// Set (or clear) the account's webhook URL: where OpenAI-dialect events
    /// (`video.completed`, `video.failed`) are delivered, signed like every webhook.
    Url {
        #[arg(long)]
        account: String,
        #[arg(long, conflicts_with = "clear", required_unless_present = "clear")]
        url: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// A task's webhook messages, each with its delivery attempts.
    List {
        #[arg(long)]
        task: String,
        #[arg(long)]
        json: bool,
    },
    /// Send a task's failed messages again (same ids), or one message (delivered or failed).
    Redeliver {
        #[arg(long)]
        task: String,
        /// One message (`evt_...`) instead of every failed one.
        #[arg(long)]
        message: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn init_tracing(filter: &str, format: reelay::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // One object per line, with the fields of the spans it happened in (request id,
        // task, account, channel).
        reelay::config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        // Colour codes only for a terminal: a log file or collector gets plain text.
        reelay::config::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
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
            init_tracing(&config.log, config.log_format);
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
            let shutdown = shutdown_signal();
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = hangup() => {
                        // The file again, checked whole; a broken one changes nothing.
                        match load() {
                            Ok(next) => match server.reload_channels(&next).await {
                                Ok(()) => tracing::info!(channels = next.channels.len(), "SIGHUP: channels reloaded from the configuration"),
                                Err(e) => tracing::error!(error = %e, "SIGHUP: channels not reloaded"),
                            },
                            Err(e) => tracing::error!(error = %e, "SIGHUP: the configuration does not load; nothing changed"),
                        }
                    }
                }
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
            video,
        } => {
            init_tracing("info", reelay::config::LogFormat::Text);
            let output_video = video.build()?;
            let handle = reelay_sim::spawn(
                reelay_sim::SimConfig {
                    run_seconds,
                    api_key,
                    max_concurrent,
                    failure_rate,
                    seed,
                    output_video,
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
            rate,
            mode,
            dialect,
            max_seconds,
            pid,
            sim_url,
            sim_run_seconds,
            frames,
            database_url,
            video,
            hold_seconds,
            poll_seconds,
            json,
        } => {
            let report = reelay::bench::run(reelay::bench::BenchArgs {
                url,
                key,
                tasks,
                concurrency,
                rate,
                mode,
                dialect,
                max_seconds,
                pid,
                sim_url,
                sim_run_seconds,
                frames,
                database_url,
                video,
                hold_seconds,
                poll_seconds,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", reelay::bench::table(&report));
            }
        }
        Command::Account { command } => account(&load()?, command).await?,
        Command::Topup {
            account,
            amount,
            reason,
            json,
        } => admin::topup(&load()?, &account, amount, reason, json).await?,
        Command::Adjust {
            account,
            amount,
            reason,
            json,
        } => admin::adjust(&load()?, &account, amount, reason, json).await?,
        Command::Key { command } => {
            let config = load()?;
            match command {
                KeyCommand::Create { account, json } => {
                    admin::key_create(&config, &account, json).await?
                }
                KeyCommand::List { account, json } => {
                    admin::key_list(&config, &account, json).await?
                }
                KeyCommand::Revoke { key_id } => admin::key_revoke(&config, &key_id).await?,
            }
        }
        Command::Ledger { command } => {
            let config = load()?;
            match command {
                LedgerCommand::Show {
                    account,
                    limit,
                    json,
                } => admin::ledger_show(&config, &account, limit, json).await?,
                LedgerCommand::Verify { json } => admin::ledger_verify(&config, json).await?,
            }
        }
        Command::Task {
            command: TaskCommand::Show { id },
        } => admin::task_show(&load()?, &id).await?,
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = load()?;
            reelay::serve::Catalogs::load(&config).map_err(reelay::config::ConfigError::from)?;
            print!("{}", config.effective_toml()?);
            eprintln!("configuration OK");
        }
        Command::Migrate => {
            let config = load()?;
            reelay::serve::migrate(&config).await?;
            println!(
                "migrations applied to {}",
                reelay::config::redacted_url(&config.database_url())
            );
        }
        Command::Channel { command } => {
            let config = load()?;
            match command {
                ChannelCommand::List { json } => admin::channel_list(&config, None, json).await?,
                ChannelCommand::Show { name, json } => {
                    admin::channel_list(&config, Some(&name), json).await?
                }
                ChannelCommand::Add {
                    name,
                    kind,
                    base_url,
                    fields,
                } => admin::channel_add(&config, &name, &kind, &base_url, fields).await?,
                ChannelCommand::Set {
                    name,
                    fields,
                    clear_key,
                    base_url,
                } => admin::channel_set(&config, &name, fields, clear_key, base_url).await?,
                ChannelCommand::Enable { name } => {
                    admin::channel_switch(&config, &name, true, None).await?
                }
                ChannelCommand::Disable { name, reason } => {
                    admin::channel_switch(&config, &name, false, reason).await?
                }
                ChannelCommand::Remove { name } => admin::channel_remove(&config, &name).await?,
            }
        }
        Command::Webhook { command } => {
            let config = load()?;
            match command {
                WebhookCommand::Secret {
                    account,
                    rotate,
                    grace_seconds,
                    json,
                } => admin::webhook_secret(&config, &account, rotate, grace_seconds, json).await?,
                WebhookCommand::HmacKey {
                    account,
                    key,
                    clear: _,
                } => admin::webhook_hmac_key(&config, &account, key).await?,
                WebhookCommand::Url {
                    account,
                    url,
                    clear: _,
                } => admin::webhook_url(&config, &account, url).await?,
                WebhookCommand::List { task, json } => {
                    admin::webhook_list(&config, &task, json).await?
                }
                WebhookCommand::Redeliver {
                    task,
                    message,
                    json,
                } => admin::webhook_redeliver(&config, &task, message, json).await?,
            }
        }
    }
    Ok(())
}

async fn account(config: &Config, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            name,
            credits,
            price_multiplier,
            max_active_tasks,
            json,
        } => {
            let opts = admin::AccountOptions {
                name,
                credits,
                price_multiplier,
                max_active_tasks,
            };
            admin::account_create(config, opts, json).await
        }
        AccountCommand::List { json } => admin::account_list(config, json).await,
        AccountCommand::Show { id, json } => admin::account_show(config, &id, json).await,
        AccountCommand::Set {
            id,
            price_multiplier,
            max_active_tasks,
            no_max_active_tasks,
            retention_seconds,
            no_retention_seconds,
            json,
        } => {
            let change = AccountChange {
                price_multiplier,
                max_active_tasks: if no_max_active_tasks {
                    Some(None)
                } else {
                    max_active_tasks.map(Some)
                },
                retention_seconds: if no_retention_seconds {
                    Some(None)
                } else {
                    retention_seconds.map(Some)
                },
            };
            admin::account_set(config, &id, change, json).await
        }
    }
}

/// The next SIGHUP (never, where there are no such signals).
async fn hangup() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
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

/// `--rate`: a finite number of submits per second above zero.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e7 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: give submits per second, above 0"
        )),
    }
}
