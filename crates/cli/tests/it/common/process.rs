//! The real `reelay` binary as a child process, for crash tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `reelay serve`. Killed (and reaped) on drop, so a failing test leaves no process
/// behind; when the test is failing, its log is printed to help.
pub struct Reelay {
    child: Option<Child>,
    pub base_url: String,
    /// The key printed on first start, if this start printed one.
    pub first_key: Option<String>,
    log: PathBuf,
}

impl Reelay {
    /// Starts the binary and waits for its "listening" line.
    pub fn start(config: &Path, data_dir: &Path, log: PathBuf) -> Reelay {
        Self::start_limited(config, data_dir, log, None)
    }

    /// Starts the binary on the database of `database_of`'s data dir (instances sharing one).
    pub fn start_on(config: &Path, data_dir: &Path, database_of: &Path, log: PathBuf) -> Reelay {
        Self::spawn(config, data_dir, database_of, log, None)
    }

    /// Starts the binary with the open-file limit set to `(soft, hard)` first, as `prlimit
    /// --nofile` would.
    pub fn start_limited(
        config: &Path,
        data_dir: &Path,
        log: PathBuf,
        nofile: Option<(u64, u64)>,
    ) -> Reelay {
        Self::spawn(config, data_dir, data_dir, log, nofile)
    }

    fn spawn(
        config: &Path,
        data_dir: &Path,
        database_of: &Path,
        log: PathBuf,
        nofile: Option<(u64, u64)>,
    ) -> Reelay {
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_reelay"));
        if let Some((soft, hard)) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard));
            }
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env_remove("REELAY_CONFIG")
            .env_remove("RUST_LOG")
            .envs(database_env(database_of))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("the reelay binary starts");
        // Read stdout on a thread of its own, to the end, so the pipe never fills.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining.
                }
            }
        });
        let mut guard = Reelay {
            child: Some(child),
            base_url: String::new(),
            first_key: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("reelay exited before it listened (its log follows)")
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("reelay did not print its listening line within 30 s")
                }
            };
            if let Some(key) = line.strip_prefix("  ").filter(|k| k.starts_with("key_")) {
                guard.first_key = Some(key.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("reelay listening on ") {
                guard.base_url = rest.split_whitespace().next().unwrap().to_string();
                return guard;
            }
        }
    }

    /// The process id (for reading its /proc entries).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM: the process shuts down as it does for an operator's stop; waits for it.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("reelay did not exit within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGHUP: the channels in the configuration file are applied again.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            let _ = child.wait();
        }
    }
}

impl Drop for Reelay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!(
                "--- {} (last lines) ---\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
    }
}

/// `reelay ledger verify` on the data dir must exit 0.
/// On PostgreSQL runs, the data dir's own database for the child process.
pub fn database_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    match super::postgres_admin_url() {
        Some(_) => vec![("REELAY_DATABASE_URL", super::database_url(data_dir))],
        None => vec![],
    }
}

pub fn ledger_verify(config: &Path, data_dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(database_env(data_dir))
        .args(["ledger", "verify"])
        .output()
        .expect("run reelay ledger verify");
    assert!(
        out.status.success(),
        "reelay ledger verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
