//! `reelay config check`: the real binary on a real file, as an operator runs it before a
//! deploy. A sound configuration prints what is in force without a secret; a broken one exits 1
//! naming the key, and the mapping files are checked as `serve` checks them.

use std::path::Path;
use std::process::{Command, Output};

fn check(dir: &Path, config: &str, env: &[(&str, &str)]) -> Output {
    let file = dir.join("reelay.toml");
    std::fs::write(&file, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_reelay"))
        .arg("--config")
        .arg(&file)
        .args(["config", "check"])
        .env_remove("REELAY_DATABASE_URL")
        .env_remove("REELAY_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("the reelay binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_sound_configuration_is_printed_with_its_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        r#"
listen = "127.0.0.1:0"
database_url = "postgres://reelay:pg-secret-pw@127.0.0.1:5432/reelay"
[engine]
workers = 7
[[channels]]
name = "primary"
kind = "runway"
base_url = "https://api.example"
api_key = "sk-upstream-in-file"
"#,
        &[
            ("REELAY_ADMIN_TOKEN", "admin-token-from-the-environment"),
            ("REELAY_WEBHOOKS__TIMEOUT_MS", "9000"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("configuration OK"), "{stderr}");
    // The file, the environment and the defaults, merged.
    let shown: toml::Value = toml::from_str(&stdout).unwrap();
    assert_eq!(shown["engine"]["workers"].as_integer(), Some(7));
    assert_eq!(shown["webhooks"]["timeout_ms"].as_integer(), Some(9000));
    assert_eq!(shown["engine"]["lease_seconds"].as_integer(), Some(60));
    assert_eq!(shown["channels"][0]["name"].as_str(), Some("primary"));
    for secret in [
        "pg-secret-pw",
        "sk-upstream-in-file",
        "admin-token-from-the-environment",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret}"
        );
    }
    assert_eq!(shown["admin_token"].as_str(), Some("<secret>"));
    assert_eq!(shown["channels"][0]["api_key"].as_str(), Some("<secret>"));
    // It opened nothing: no database file, no data folder.
    assert!(!dir.path().join("reelay-data").exists());
}

#[test]
fn a_broken_configuration_exits_1_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // (file, environment, the key the error must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[engine]\nworkers = \"many\"\n", &[], "engine.workers"),
        ("[engine]\nworkrs = 3\n", &[], "engine.workrs"),
        (
            "",
            &[("REELAY_MEDIA__LINK_TTL_SECONDS", "5")],
            "media.link_ttl_seconds",
        ),
        (
            "[[channels]]\nname = \"a\"\nkind = \"runway\"\nbase_url = \"ftp://x\"\n",
            &[],
            "channels.a.base_url",
        ),
        (
            "[reverse]\nmapping_file = \"missing.json\"\n",
            &[],
            "reverse.mapping_file",
        ),
        (
            "[prices]\n\"no-such-model\" = { flat = 1 }\n",
            &[],
            "prices",
        ),
    ];
    for (config, env, key) in cases {
        let out = check(dir.path(), config, env);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{config}: {stdout} {stderr}");
        assert!(
            stderr.contains(&format!("invalid configuration: {key}: ")),
            "{config}: {stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
    // A mapping file that parses but names a model the catalog lacks.
    let mapping = reelay_core::QUICKSTART_MAP_JSON.replace("\"gen4.5\"", "\"no-such-model\"");
    assert_ne!(mapping, reelay_core::QUICKSTART_MAP_JSON);
    std::fs::write(dir.path().join("qs.json"), mapping).unwrap();
    let out = check(
        dir.path(),
        "[quickstart]\nmapping_file = \"qs.json\"\n",
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid configuration: quickstart.mapping_file: ")
            && stderr.contains("no-such-model"),
        "{stderr}"
    );
}
