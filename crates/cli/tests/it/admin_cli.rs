//! The admin subcommands of the real binary on a temp data dir: what they print, their exit
//! codes, and that a refused command writes nothing.

use std::process::{Command, Output};

use serde_json::Value;

/// The `reelay` binary on one temp data dir.
struct Reelay {
    dir: tempfile::TempDir,
}

impl Reelay {
    fn new() -> Reelay {
        Reelay {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_reelay"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("REELAY_LOG", "warn")
            .env_remove("REELAY_CONFIG")
            .env_remove("REELAY_DATA_DIR")
            .env_remove("REELAY_DATABASE_URL")
            .env_remove("RUST_LOG")
            .envs(crate::common::process::database_env(self.dir.path()))
            .output()
            .expect("the reelay binary runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "reelay {args:?} failed ({}): {stderr}{stdout}",
            out.status
        );
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let (stdout, stderr) = texts(&out);
        assert!(!out.status.success(), "reelay {args:?} succeeded: {stdout}");
        assert!(stdout.is_empty(), "reelay {args:?} printed {stdout}");
        stderr
    }

    /// An account's state and its whole ledger.
    fn state(&self, id: &str) -> (Value, Value) {
        (
            self.json(&["account", "show", id, "--json"]),
            self.json(&[
                "ledger",
                "show",
                "--account",
                id,
                "--limit",
                "1000",
                "--json",
            ]),
        )
    }

    fn create_account(&self, name: &str, credits: &str) -> (String, String) {
        let v = self.json(&[
            "account",
            "create",
            "--name",
            name,
            "--credits",
            credits,
            "--json",
        ]);
        (
            v["account_id"].as_str().unwrap().to_string(),
            v["api_key"].as_str().unwrap().to_string(),
        )
    }
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn accounts_topups_ledger_and_keys_round_trip() {
    let r = Reelay::new();
    let created = r.json(&[
        "account",
        "create",
        "--name",
        "acme",
        "--credits",
        "100",
        "--json",
    ]);
    let id = created["account_id"].as_str().unwrap().to_string();
    assert!(created["api_key"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["account"]["credits_available"], 100);

    let v = r.json(&[
        "topup",
        "--account",
        &id,
        "--amount",
        "50",
        "--reason",
        "invoice 9",
        "--json",
    ]);
    assert_eq!(v["credits_available"], 150);
    // Negative numbers are values, with `=` or without.
    let v = r.json(&[
        "adjust",
        "--account",
        &id,
        "--amount=-20",
        "--reason",
        "refund",
        "--json",
    ]);
    assert_eq!(v["credits_available"], 130);
    let v = r.json(&[
        "adjust",
        "--account",
        &id,
        "--amount",
        "-10",
        "--reason",
        "fee",
        "--json",
    ]);
    assert_eq!(v["credits_available"], 120);

    let ledger = r.json(&["ledger", "show", "--account", &id, "--json"]);
    let rows: Vec<(&str, i64, &str)> = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["amount"].as_i64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("adjust", -10, "fee"),
            ("adjust", -20, "refund"),
            ("topup", 50, "invoice 9"),
            ("topup", 100, "initial credits"),
        ]
    );
    let limited = r.json(&["ledger", "show", "--account", &id, "--limit", "1", "--json"]);
    assert_eq!(limited["data"].as_array().unwrap().len(), 1);
    let human = r.ok(&["ledger", "show", "--account", &id]);
    assert_eq!(human.lines().count(), 4, "{human}");
    assert!(human.contains("invoice 9"), "{human}");

    let v = r.json(&[
        "account",
        "set",
        &id,
        "--price-multiplier",
        "2",
        "--max-active-tasks",
        "3",
        "--json",
    ]);
    assert_eq!(
        (
            v["price_multiplier"].as_f64(),
            v["max_active_tasks"].as_i64()
        ),
        (Some(2.0), Some(3))
    );
    let v = r.json(&["account", "set", &id, "--no-max-active-tasks", "--json"]);
    assert_eq!(v["max_active_tasks"], Value::Null);
    assert_eq!(v["price_multiplier"], 2.0);
    assert_eq!(r.json(&["account", "show", &id, "--json"]), v);
    let list = r.json(&["account", "list", "--json"]);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(r.ok(&["account", "list"]).contains(&id));

    let key = r.json(&["key", "create", "--account", &id, "--json"]);
    let key_id = key["key_id"].as_str().unwrap().to_string();
    assert_eq!(key["account_id"], id.as_str());
    let keys = r.json(&["key", "list", "--account", &id, "--json"]);
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains(key["api_key"].as_str().unwrap()));
    assert!(r.ok(&["key", "revoke", &key_id]).contains(&key_id));
    let keys = r.json(&["key", "list", "--account", &id, "--json"]);
    let revoked = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");
    let err = r.fails(&["key", "revoke", &key_id]);
    assert!(err.contains("already revoked"), "{err}");

    assert_eq!(r.ok(&["ledger", "verify"]).trim(), "ledger OK");
    assert_eq!(
        r.json(&["ledger", "verify", "--json"]),
        serde_json::json!({"ok": true, "violations": []})
    );
}

#[test]
fn refused_commands_exit_non_zero_with_a_message_and_write_nothing() {
    let r = Reelay::new();
    let (id, _) = r.create_account("acme", "100");
    let before = r.state(&id);

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["topup", "--account", &id, "--amount", "-5"],
            "must be positive",
        ),
        (
            vec!["topup", "--account", &id, "--amount=-5"],
            "must be positive",
        ),
        (
            vec!["topup", "--account", &id, "--amount", "0"],
            "must be positive",
        ),
        (
            vec!["topup", "--account", &id, "--amount", "1.5"],
            "whole number",
        ),
        (
            vec!["topup", "--account", &id, "--amount", "ten"],
            "whole number",
        ),
        (
            vec![
                "topup",
                "--account",
                &id,
                "--amount",
                "99999999999999999999",
            ],
            "out of range",
        ),
        (
            vec!["topup", "--account", &id, "--amount", "1000000000000001"],
            "out of range",
        ),
        (
            vec!["topup", "--account", "acct_nope", "--amount", "5"],
            "no account acct_nope",
        ),
        (
            vec!["adjust", "--account", &id, "--amount=-101", "--reason", "r"],
            "negative",
        ),
        (
            vec!["adjust", "--account", &id, "--amount", "0", "--reason", "r"],
            "zero",
        ),
        (
            vec!["adjust", "--account", &id, "--amount", "5"],
            "--reason",
        ),
        (
            vec!["adjust", "--account", &id, "--amount", "5", "--reason", " "],
            "reason",
        ),
        (
            vec![
                "adjust",
                "--account",
                "acct_nope",
                "--amount",
                "5",
                "--reason",
                "r",
            ],
            "no account acct_nope",
        ),
        (vec!["account", "set", &id], "nothing to change"),
        (
            vec!["account", "set", &id, "--price-multiplier", "0"],
            "price_multiplier",
        ),
        (
            vec!["account", "set", &id, "--price-multiplier", "NaN"],
            "price_multiplier",
        ),
        (
            vec!["account", "set", &id, "--max-active-tasks", "0"],
            "max_active_tasks",
        ),
        (
            vec![
                "account",
                "set",
                &id,
                "--max-active-tasks",
                "2",
                "--no-max-active-tasks",
            ],
            "cannot be used with",
        ),
        (vec!["account", "show", "acct_nope"], "no account acct_nope"),
        (
            vec!["ledger", "show", "--account", &id, "--limit", "0"],
            "limit",
        ),
        (
            vec!["ledger", "show", "--account", "acct_nope"],
            "no account acct_nope",
        ),
        (
            vec!["key", "create", "--account", "acct_nope"],
            "no account acct_nope",
        ),
        (vec!["key", "revoke", "kid_nope"], "kid_nope"),
        (vec!["task", "show", "nope"], "no task nope"),
    ];
    for (args, message) in cases {
        let err = r.fails(&args);
        assert!(err.contains(message), "reelay {args:?}: {err}");
    }
    let err = r.fails(&["account", "create", "--name", "x", "--credits", "-3"]);
    assert!(err.contains("must not be negative"), "{err}");
    let err = r.fails(&["account", "create", "--name", " ", "--credits", "3"]);
    assert!(err.contains("name"), "{err}");

    assert_eq!(r.state(&id), before, "a refused command wrote something");
    let list = r.json(&["account", "list", "--json"]);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.ok(&["ledger", "verify"]).trim(), "ledger OK");
}

#[tokio::test]
async fn ledger_verify_exits_1_and_names_the_account_of_a_tampered_balance() {
    let r = Reelay::new();
    let (good, _) = r.create_account("good", "10");
    let (bad, _) = r.create_account("bad", "100");
    assert_eq!(r.ok(&["ledger", "verify"]).trim(), "ledger OK");

    crate::common::credit_behind_the_ledger(r.dir.path(), &bad, 7).await;

    let out = r.run(&["ledger", "verify"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains(&bad), "{stdout}");
    assert!(!stdout.contains(&good), "{stdout}");
    assert!(!stdout.contains("ledger OK"), "{stdout}");
    assert!(stderr.contains("1 violation"), "{stderr}");

    let out = r.run(&["ledger", "verify", "--json"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["violations"][0]["account_id"], bad.as_str());
}

/// A `whsec_` secret with a 32-byte key.
fn assert_secret(v: &Value) -> String {
    use base64::Engine as _;
    let s = v.as_str().unwrap_or_else(|| panic!("not a secret: {v}"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(s.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    assert_eq!(key.len(), 32, "{s}");
    s.to_string()
}

#[test]
fn webhook_secrets_are_shown_and_rotated() {
    let r = Reelay::new();
    let created = r.json(&["account", "create", "--name", "acme", "--json"]);
    let id = created["account_id"].as_str().unwrap().to_string();
    let first = assert_secret(&created["webhook_secret"]);
    let show = ["webhook", "secret", "--account", id.as_str(), "--json"];
    assert_eq!(
        r.json(&show),
        serde_json::json!({"webhook_secret": first, "previous": null})
    );
    // The text form names the secret once.
    let text = r.ok(&["account", "create", "--name", "other"]);
    assert_eq!(text.matches("whsec_").count(), 1, "{text}");

    let rotated = r.json(&["webhook", "secret", "--account", &id, "--rotate", "--json"]);
    let second = assert_secret(&rotated["webhook_secret"]);
    assert_ne!(second, first);
    assert!(
        rotated["previous_valid_until"].as_i64().is_some(),
        "{rotated}"
    );
    assert_eq!(
        r.json(&show),
        serde_json::json!({"webhook_secret": second, "previous": first})
    );
    let text = r.ok(&["webhook", "secret", "--account", &id]);
    assert!(text.contains(&second) && text.contains(&first), "{text}");

    let rotated = r.json(&[
        "webhook",
        "secret",
        "--account",
        &id,
        "--rotate",
        "--grace-seconds",
        "0",
        "--json",
    ]);
    let third = assert_secret(&rotated["webhook_secret"]);
    assert_eq!(
        r.json(&show),
        serde_json::json!({"webhook_secret": third, "previous": null})
    );

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "webhook",
                "secret",
                "--account",
                &id,
                "--grace-seconds",
                "5",
            ],
            "--rotate",
        ),
        (
            vec![
                "webhook",
                "secret",
                "--account",
                &id,
                "--rotate",
                "--grace-seconds",
                "604801",
            ],
            "grace_seconds must be between 0 and 604800",
        ),
        (
            vec![
                "webhook",
                "secret",
                "--account",
                &id,
                "--rotate",
                "--grace-seconds",
                "-1",
            ],
            "grace_seconds must be between 0 and 604800",
        ),
        (
            vec!["webhook", "secret", "--account", "acct_nope"],
            "no account acct_nope",
        ),
        (
            vec!["webhook", "secret", "--account", "acct_nope", "--rotate"],
            "no account acct_nope",
        ),
        (vec!["webhook", "list", "--task", "nope"], "no task nope"),
        (
            vec!["webhook", "redeliver", "--task", "nope"],
            "no task nope",
        ),
        (
            vec![
                "webhook",
                "redeliver",
                "--task",
                "nope",
                "--message",
                "evt_x",
            ],
            "no task nope",
        ),
    ];
    for (args, message) in cases {
        let err = r.fails(&args);
        assert!(err.contains(message), "reelay {args:?}: {err}");
    }
    assert_eq!(
        r.json(&show)["webhook_secret"],
        third.as_str(),
        "a refused command rotated"
    );
}

/// `reelay channel add|set|disable|enable|remove|list|show` on the store: the key taken from
/// an environment variable, sealed, and never printed.
#[test]
fn channel_commands_manage_the_registry_and_never_print_a_key() {
    let r = Reelay::new();
    let key = "sk-cli-channel-7f3a9b";
    let out = Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("--data-dir")
        .arg(r.dir.path())
        .args([
            "channel",
            "add",
            "resold",
            "--kind",
            "reverse",
            "--base-url",
            "https://reseller.example",
            "--api-key-env",
            "RESELLER_KEY",
            "--priority",
            "3",
            "--max-concurrent",
            "4",
            "--model",
            "gen4_turbo",
            "--map",
            "gen4_turbo=gen4",
        ])
        .env("RESELLER_KEY", key)
        .env("REELAY_LOG", "warn")
        .env_remove("REELAY_CONFIG")
        .env_remove("REELAY_DATABASE_URL")
        .envs(crate::common::process::database_env(r.dir.path()))
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}{stdout}");
    let listed = r.json(&["channel", "list", "--json"]);
    let c = &listed[0];
    assert_eq!(c["name"], "resold");
    assert_eq!(c["has_key"], true);
    assert_eq!(c["config"]["priority"], 3);
    assert_eq!(c["config"]["model_map"]["gen4_turbo"], "gen4");
    r.ok(&[
        "channel",
        "set",
        "resold",
        "--weight",
        "5",
        "--max-submits-per-second",
        "2.5",
    ]);
    r.ok(&[
        "channel",
        "disable",
        "resold",
        "--reason",
        "maintenance window",
    ]);
    let shown = r.json(&["channel", "show", "resold", "--json"]);
    assert_eq!(
        (
            shown["enabled"].as_bool(),
            shown["disabled_reason"].as_str()
        ),
        (Some(false), Some("maintenance window"))
    );
    assert_eq!(shown["config"]["weight"], 5);
    assert_eq!(shown["config"]["max_submits_per_second"], 2.5);
    r.ok(&["channel", "enable", "resold"]);
    let human = r.ok(&["channel", "list"]);
    assert!(
        human.contains("resold") && human.contains("enabled=true"),
        "{human}"
    );
    // Refusals, each naming the problem.
    assert!(r
        .fails(&["channel", "set", "resold", "--weight", "0"])
        .contains("weight"));
    assert!(r
        .fails(&[
            "channel",
            "add",
            "resold",
            "--kind",
            "reverse",
            "--base-url",
            "https://x.example"
        ])
        .contains("exists"));
    assert!(r
        .fails(&[
            "channel",
            "add",
            "x",
            "--kind",
            "nope",
            "--base-url",
            "https://x.example"
        ])
        .contains("kind"));
    assert!(r.fails(&["channel", "disable", "ghost"]).contains("ghost"));
    r.ok(&["channel", "set", "resold", "--clear-key"]);
    assert_eq!(
        r.json(&["channel", "show", "resold", "--json"])["has_key"],
        false
    );
    r.ok(&["channel", "remove", "resold"]);
    assert_eq!(
        r.json(&["channel", "list", "--json"]),
        serde_json::json!([])
    );
    let out = r.run(&["channel", "list", "--json"]);
    let (stdout, stderr) = texts(&out);
    assert!(!stdout.contains(key) && !stderr.contains(key));
}
