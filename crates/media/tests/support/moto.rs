//! A real S3-compatible server for tests: `moto_server` (pip `moto[server]`, pinned in
//! `tests/python/requirements.txt`) started on a free port as a child process, killed on drop.
//!
//! When it is not installed the caller skips with a loud message, unless
//! `REELAY_REQUIRE_S3_TESTS=1` (set by `.ci/run`), which makes its absence a failure.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// The running server, or `None` (after a loud message) when moto is not installed and
    /// not required.
    pub fn start(test: &str) -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let port_arg = port.to_string();
        let args = ["-H", "127.0.0.1", "-p", port_arg.as_str()];
        // The console script, else the module (a fresh pip install may not have its script on
        // the PATH yet, e.g. behind pyenv shims).
        let mut candidates = vec![Command::new("moto_server")];
        candidates[0].args(args);
        let mut module = Command::new("python3");
        module.args(["-m", "moto.server"]).args(args);
        candidates.push(module);
        let mut why = String::new();
        for mut cmd in candidates {
            let child = match cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => {
                    why = format!("{:?}: {e}", cmd.get_program());
                    continue;
                }
            };
            let mut moto = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(moto);
                }
                if let Ok(Some(status)) = moto.child.try_wait() {
                    why = format!("{:?} exited with {status}", cmd.get_program());
                    break;
                }
                assert!(Instant::now() < deadline, "moto did not listen within 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        assert!(
            std::env::var("REELAY_REQUIRE_S3_TESTS").as_deref() != Ok("1"),
            "REELAY_REQUIRE_S3_TESTS=1 but moto cannot be started ({why}); pip install -r tests/python/requirements.txt"
        );
        eprintln!(
            "\n*** SKIPPED {test}: moto is not installed ({why}); pip install 'moto[server]' to run the S3 tests ***\n"
        );
        None
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("moto answers");
        assert!(
            r.status().is_success(),
            "creating bucket {name}: {}",
            r.status()
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
