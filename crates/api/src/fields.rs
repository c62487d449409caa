//! The one field reader of the dialects that hand-parse their bodies (reverse, quick-start,
//! OpenAI's multipart form): each read names the field, checks its type and bound, and
//! remembers it was read so that [`Fields::done`] can refuse the rest — a typo gets an answer,
//! not a silent default. Errors are [`ApiError`]s of kind `Invalid` naming the field (`param`).

use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    /// Prepended to names in messages (`options.` for a nested object).
    prefix: &'static str,
    /// Fields that hold a media URL or data URI; every other string is text.
    media: &'static [&'static str],
    seen: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(
        obj: &'a Map<String, Value>,
        prefix: &'static str,
        media: &'static [&'static str],
    ) -> Fields<'a> {
        Fields {
            obj,
            prefix,
            media,
            seen: vec![],
        }
    }

    /// An error about `name`, worded `"<prefix><name> <what>"`.
    pub fn error(&self, name: &str, what: impl std::fmt::Display) -> ApiError {
        let field = format!("{}{name}", self.prefix);
        ApiError::invalid(field.clone(), format!("{field} {what}"))
    }

    /// The value of `name`, marked as read; `null` reads as absent.
    pub fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.seen.push(name);
        self.obj.get(name).filter(|v| !v.is_null())
    }

    /// A string as sent (blank included), within the field's bound.
    pub fn string(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        let max = crate::dialects::string_bound(self.media.contains(&name));
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if crate::dialects::longer_than_utf16(s, max) => {
                Err(self.error(name, format_args!("must be at most {max} characters")))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.error(name, "must be a string")),
        }
    }

    /// A string that is not blank; blank reads as absent.
    pub fn text(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        Ok(self.string(name)?.filter(|s| !s.trim().is_empty()))
    }

    pub fn required(&mut self, name: &'static str) -> Result<String, ApiError> {
        self.text(name)?
            .ok_or_else(|| self.error(name, "is required"))
    }

    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(name, "must be true or false")),
        }
    }

    /// A boolean that defaults to false.
    pub fn flag(&mut self, name: &'static str) -> Result<bool, ApiError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    pub fn number(
        &mut self,
        name: &'static str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if (min..=max).contains(&v) {
                    Ok(Some(v))
                } else {
                    Err(self.error(name, format_args!("must be between {min} and {max}")))
                }
            }
            Some(_) => Err(self.error(name, "must be a number")),
        }
    }

    pub fn int(&mut self, name: &'static str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some_and(|v| (min..=max).contains(&v)) => {
                Ok(n.as_i64())
            }
            Some(_) => {
                Err(self.error(name, format_args!("must be an integer from {min} to {max}")))
            }
        }
    }

    /// Whole seconds sent as `5`, `5.0` or `"5"` alike.
    pub fn seconds(&mut self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let whole = |f: f64| (f.fract() == 0.0 && f.abs() < 1e12).then_some(f as i64);
        let v = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64().and_then(whole),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok().and_then(whole),
            Some(_) => None,
        };
        v.map(Some)
            .ok_or_else(|| self.error(name, "must be a number of seconds"))
    }

    pub fn object(
        &mut self,
        name: &'static str,
    ) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.error(name, "must be an object")),
        }
    }

    /// Refuses fields nobody read.
    pub fn done(self) -> Result<(), ApiError> {
        match self.obj.keys().find(|k| !self.seen.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => {
                let field = format!("{}{k}", self.prefix);
                Err(ApiError::invalid(
                    field.clone(),
                    format!("unknown field {field}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_name_the_field_and_unread_fields_are_refused() {
        let o = obj(json!({"a": " ", "n": 3, "s": "5.0", "x": 1, "o": {"k": true}}));
        let mut f = Fields::new(&o, "opts.", &[]);
        assert_eq!(f.string("a").unwrap().as_deref(), Some(" "));
        assert_eq!(f.text("a").unwrap(), None);
        let e = f.required("a").unwrap_err();
        assert_eq!(e.message, "opts.a is required");
        assert_eq!(e.param.as_deref(), Some("opts.a"));
        assert_eq!(f.int("n", 0, 5).unwrap(), Some(3));
        assert!(f
            .int("n", 4, 5)
            .unwrap_err()
            .message
            .contains("from 4 to 5"));
        assert_eq!(f.seconds("s").unwrap(), Some(5));
        assert!(f.bool("n").is_err());
        assert!(f.object("o").unwrap().is_some());
        assert_eq!(f.done().unwrap_err().message, "unknown field opts.x");
        let long = obj(json!({"t": "x".repeat(crate::dialects::string_bound(false) + 1)}));
        assert!(Fields::new(&long, "", &[]).string("t").is_err());
        assert!(Fields::new(&long, "", &["t"]).string("t").is_ok());
    }
}
