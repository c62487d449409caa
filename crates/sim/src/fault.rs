//! Failures the simulator can be told to produce: queued faults (pushed through the Rust API or
//! `POST /_sim/faults`) and per-request directives written into a prompt (`[sim:...]`), which
//! let a test drive faults through a gateway that only forwards bodies.

use serde::{Deserialize, Serialize};

/// One injected failure. Each applies to one create request, in whichever format it came
/// (Runway's `POST /v1/<endpoint>`, the reverse format's `POST /runway/pro/...`, the
/// quick-start format's `POST /api/v1/runway/generate`), and is answered in that format's own
/// way: a reverse error is its `{code, msg, data}` envelope with the HTTP status equal to
/// `code`; a quick-start error is its envelope in an HTTP 200 (a 503 there is its code 455,
/// "maintenance"; other 5xx keep their HTTP status).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 `{"error": ...}` with `Retry-After` and `x-ratelimit-*` headers; no task created.
    RateLimit { retry_after_secs: u64 },
    /// This status (5xx) before anything is created.
    ServerError { status: u16 },
    /// The task IS created, then this status is answered: an unknown outcome for the client.
    AcceptThenServerError { status: u16 },
    /// The connection is dropped before anything is created.
    ResetBeforeAccept,
    /// The task IS created, then the connection is dropped without a response.
    ResetAfterAccept,
    /// The task IS created; the response is delayed by `secs` (longer than a client timeout).
    TimeoutAfterAccept { secs: u64 },
    /// 400 moderation rejection at submit; no task created.
    Moderation,
    /// The account is out of credit; no task created. Runway: 400 "You do not have enough
    /// credits to run this task."; reverse: 402 `insufficient points`; quick-start: code 402.
    OutOfCredit,
    /// The task is created and later ends `FAILED` with this `failureCode`.
    FailTask { code: String },
    /// The task is created and runs `factor` times longer than configured.
    SlowProgress { factor: f64 },
}

impl Fault {
    /// Faults answered before the body is even read (a load balancer or rate limiter would).
    pub(crate) fn is_before_body(&self) -> bool {
        matches!(
            self,
            Fault::RateLimit { .. } | Fault::ServerError { .. } | Fault::ResetBeforeAccept
        )
    }

    /// Faults that answer instead of creating, once the body is known valid.
    pub(crate) fn is_pre_accept(&self) -> bool {
        self.is_before_body() || matches!(self, Fault::Moderation | Fault::OutOfCredit)
    }

    /// Faults that spoil the response after the task was created.
    pub(crate) fn is_post_accept(&self) -> bool {
        matches!(
            self,
            Fault::AcceptThenServerError { .. }
                | Fault::ResetAfterAccept
                | Fault::TimeoutAfterAccept { .. }
        )
    }
}

/// A directive found in a prompt. `once` directives are transient failures: they fire the first
/// time for a given request identity (the `X-Reelay-Reference`, else the body) so that a client
/// retrying the same request gets through; the others describe the content and fire every time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Directive {
    pub fault: Fault,
    pub once: bool,
    /// The directive as written, to remember which once-directives fired.
    pub token: String,
}

/// Reads every `[sim:...]` directive in `text`. Unknown ones are ignored (they are just text).
///
/// Recognised: `fail=CODE`, `moderation`, `out_of_credit`, `slow=F` (persistent); `429` or `429=SECS`,
/// `reset_after_accept`, `timeout_after_accept=SECS`, `NNN_after_accept` (5xx), `NNN` (5xx,
/// before accept) and `reset` / `reset_before_accept` (once).
pub(crate) fn parse_directives(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[sim:") {
        let after = &rest[start + 5..];
        let Some(end) = after.find(']') else { break };
        let token = after[..end].trim();
        if let Some(d) = parse_one(token) {
            out.push(d);
        }
        rest = &after[end + 1..];
    }
    out
}

fn parse_one(token: &str) -> Option<Directive> {
    let (name, arg) = match token.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (token, None),
    };
    let persistent = |fault| {
        Some(Directive {
            fault,
            once: false,
            token: token.to_string(),
        })
    };
    let once = |fault| {
        Some(Directive {
            fault,
            once: true,
            token: token.to_string(),
        })
    };
    let five_xx = |s: &str| s.parse::<u16>().ok().filter(|c| (500..600).contains(c));
    match (name, arg) {
        ("fail", Some(code)) if !code.is_empty() => persistent(Fault::FailTask {
            code: code.to_string(),
        }),
        ("moderation", None) => persistent(Fault::Moderation),
        ("out_of_credit", None) => persistent(Fault::OutOfCredit),
        ("slow", Some(f)) => {
            let factor = f
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f > 0.0)?;
            persistent(Fault::SlowProgress { factor })
        }
        ("429", arg) => {
            let retry_after_secs = match arg {
                Some(a) => a.parse().ok()?,
                None => 1,
            };
            once(Fault::RateLimit { retry_after_secs })
        }
        ("reset_after_accept", None) => once(Fault::ResetAfterAccept),
        ("reset" | "reset_before_accept", None) => once(Fault::ResetBeforeAccept),
        ("timeout_after_accept", Some(s)) => once(Fault::TimeoutAfterAccept {
            secs: s.parse().ok()?,
        }),
        (n, None) => {
            if let Some(code) = n.strip_suffix("_after_accept") {
                once(Fault::AcceptThenServerError {
                    status: five_xx(code)?,
                })
            } else {
                once(Fault::ServerError {
                    status: five_xx(n)?,
                })
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_found_anywhere_in_a_prompt() {
        let d = parse_directives(
            "a cat [sim:fail=SAFETY.INPUT.TEXT] on a mat [sim:slow=2.5][sim:nope] [sim:429]",
        );
        let faults: Vec<_> = d.iter().map(|d| d.fault.clone()).collect();
        assert_eq!(
            faults,
            vec![
                Fault::FailTask {
                    code: "SAFETY.INPUT.TEXT".into()
                },
                Fault::SlowProgress { factor: 2.5 },
                Fault::RateLimit {
                    retry_after_secs: 1
                },
            ]
        );
        assert!(!d[0].once && !d[1].once && d[2].once);
    }

    #[test]
    fn accept_directives() {
        let d = parse_directives("[sim:500_after_accept][sim:timeout_after_accept=3][sim:reset_after_accept][sim:503][sim:moderation][sim:out_of_credit]");
        let faults: Vec<_> = d.into_iter().map(|d| d.fault).collect();
        assert_eq!(
            faults,
            vec![
                Fault::AcceptThenServerError { status: 500 },
                Fault::TimeoutAfterAccept { secs: 3 },
                Fault::ResetAfterAccept,
                Fault::ServerError { status: 503 },
                Fault::Moderation,
                Fault::OutOfCredit,
            ]
        );
    }

    #[test]
    fn fault_json_shape() {
        let f: Fault =
            serde_json::from_str(r#"{"kind":"rate_limit","retry_after_secs":2}"#).unwrap();
        assert_eq!(
            f,
            Fault::RateLimit {
                retry_after_secs: 2
            }
        );
        assert_eq!(
            serde_json::to_value(Fault::ResetAfterAccept).unwrap(),
            serde_json::json!({"kind": "reset_after_accept"})
        );
    }
}
