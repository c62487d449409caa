//! Reading the quick-start bodies (§3.1, §5.1, §7.1): every documented field, its type and
//! range; an unknown field is a 422 naming it.

use serde_json::{Map, Value};

use super::mapping::Mapping;
use super::QsError;

fn invalid(msg: impl Into<String>) -> QsError {
    QsError::Validation(msg.into())
}

/// Fields of one body, remembering which were read.
pub struct Body<'a> {
    obj: &'a Map<String, Value>,
    seen: Vec<&'static str>,
}

impl<'a> Body<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Body<'a> {
        Body { obj, seen: vec![] }
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &'static str) -> Result<Option<String>, QsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    }

    /// A non-empty string, or `None` for absent/empty.
    pub fn text(&mut self, name: &'static str) -> Result<Option<String>, QsError> {
        Ok(self.string(name)?.filter(|s| !s.trim().is_empty()))
    }

    pub fn required(&mut self, name: &'static str) -> Result<String, QsError> {
        self.text(name)?
            .ok_or_else(|| invalid(format!("{name} is required")))
    }

    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>, QsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!("{name} must be true or false"))),
        }
    }

    pub fn int(&mut self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, QsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| (min..=max).contains(&v)) => {
                Ok(n.as_i64())
            }
            Some(_) => Err(invalid(format!(
                "{name} must be an integer from {min} to {max}"
            ))),
        }
    }

    /// `5`, `5.0` and `"5"` alike (decision 5).
    pub fn seconds(&mut self, name: &'static str) -> Result<Option<i64>, QsError> {
        let bad = || invalid(format!("{name} must be a number of seconds"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let f = n.as_f64().ok_or_else(bad)?;
                (f.fract() == 0.0)
                    .then_some(f as i64)
                    .map(Some)
                    .ok_or_else(bad)
            }
            Some(Value::String(s)) => {
                let f: f64 = s.trim().parse().map_err(|_| bad())?;
                (f.fract() == 0.0)
                    .then_some(f as i64)
                    .map(Some)
                    .ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }

    /// Refuses fields nobody read.
    pub fn done(self) -> Result<(), QsError> {
        match self.obj.keys().find(|k| !self.seen.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(invalid(format!("unknown field {k}"))),
        }
    }
}

/// `prompt`: required, at most the mapping's limit in characters.
pub fn prompt(m: &Mapping, b: &mut Body) -> Result<String, QsError> {
    let p = b.required("prompt")?;
    if p.chars().count() > m.max_prompt_chars {
        return Err(invalid(format!(
            "prompt must be at most {} characters",
            m.max_prompt_chars
        )));
    }
    Ok(p)
}

pub fn quality(m: &Mapping, b: &mut Body) -> Result<String, QsError> {
    let q = b
        .text("quality")?
        .unwrap_or_else(|| m.default_quality.clone());
    if !m.qualities.contains(&q) {
        return Err(invalid(format!(
            "quality must be one of {}",
            m.qualities.join(", ")
        )));
    }
    Ok(q)
}

/// `duration`, or the one `model` names (`runway-duration-5-generate`); both given and
/// different is an error (decision 3).
pub fn duration(m: &Mapping, b: &mut Body) -> Result<i64, QsError> {
    let given = b.seconds("duration")?;
    let from_model = match b.text("model")? {
        None => None,
        Some(model) => Some(
            model
                .strip_prefix("runway-duration-")
                .and_then(|r| r.strip_suffix("-generate"))
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "model {model:?} is not known; use runway-duration-5-generate or runway-duration-10-generate"
                    ))
                })?,
        ),
    };
    let d = match (given, from_model) {
        (Some(d), Some(md)) if d != md => {
            return Err(invalid(format!(
                "duration {d} does not match model (which says {md})"
            )))
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Err(invalid("duration is required")),
    };
    if !m.durations.contains(&d) {
        let allowed: Vec<String> = m.durations.iter().map(i64::to_string).collect();
        return Err(invalid(format!(
            "duration must be {}",
            allowed.join(" or ")
        )));
    }
    Ok(d)
}

pub fn check_combination(m: &Mapping, duration: i64, quality: &str) -> Result<(), QsError> {
    match m
        .invalid
        .iter()
        .find(|i| i.duration == duration && i.quality == quality)
    {
        Some(i) => Err(invalid(i.message.clone())),
        None => Ok(()),
    }
}

/// `value` must be one of `allowed` (an aspect ratio list, say).
pub fn one_of(field: &str, value: &str, allowed: &[String]) -> Result<(), QsError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must be one of {}",
            allowed.join(", ")
        )))
    }
}
