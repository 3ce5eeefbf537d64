//! Plugin parameters: a JSON object, kept in canonical form (keys sorted, no
//! whitespace) so that equal parameters give equal bytes and equal ids.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// Parameters for a plugin: a JSON object in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Params(String);

impl Params {
    /// No parameters (`{}`).
    pub fn empty() -> Params {
        Params("{}".into())
    }

    /// Parse a JSON object.
    ///
    /// # Errors
    /// [`Error::ParamsSyntax`] if the text is not a JSON object.
    ///
    /// # Examples
    /// ```
    /// let p = kiln_runtime::Params::from_json(r#"{ "b": 1, "a": [true] }"#).unwrap();
    /// assert_eq!(p.as_str(), r#"{"a":[true],"b":1}"#);
    /// ```
    pub fn from_json(text: &str) -> Result<Params> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::ParamsSyntax(format!("--params is not valid JSON: {e}")))?;
        Params::from_value(v)
    }

    /// Canonicalize a JSON value, which must be an object.
    ///
    /// # Errors
    /// [`Error::ParamsSyntax`] if `v` is not an object.
    pub fn from_value(v: Value) -> Result<Params> {
        if !v.is_object() {
            return Err(Error::ParamsSyntax(format!(
                "parameters must be a JSON object like {{\"columns\": [\"x\"]}}, got {v}"
            )));
        }
        // serde_json's Map is ordered by key (no `preserve_order`), so this is canonical.
        Ok(Params(v.to_string()))
    }

    /// Apply `KEY=VALUE` pairs on top of these parameters. VALUE is parsed as
    /// JSON when it parses (`3`, `true`, `["a","b"]`), else taken as a string;
    /// `KEY=a,b` with a comma and no brackets becomes a list of strings.
    ///
    /// # Errors
    /// [`Error::ParamsSyntax`] for a pair without `=`.
    ///
    /// # Examples
    /// ```
    /// let p = kiln_runtime::Params::empty()
    ///     .with_pairs(&["columns=age,income".into(), "buckets=8".into(), "name=x".into()])
    ///     .unwrap();
    /// assert_eq!(p.as_str(), r#"{"buckets":8,"columns":["age","income"],"name":"x"}"#);
    /// ```
    pub fn with_pairs(&self, pairs: &[String]) -> Result<Params> {
        self.with_pairs_for(pairs, &Value::Null)
    }

    /// Like [`Params::with_pairs`], guided by the plugin's parameter JSON
    /// Schema: a single value for an `array` property becomes a one-element
    /// list (`columns=age`), and a value for a `string` property stays text
    /// (`name=123`).
    ///
    /// # Errors
    /// [`Error::ParamsSyntax`] for a pair without `=`.
    ///
    /// # Examples
    /// ```
    /// let schema = serde_json::json!({"properties": {"columns": {"type": "array"}, "tag": {"type": "string"}}});
    /// let p = kiln_runtime::Params::empty().with_pairs_for(&["columns=age".into(), "tag=7".into()], &schema).unwrap();
    /// assert_eq!(p.as_str(), r#"{"columns":["age"],"tag":"7"}"#);
    /// ```
    pub fn with_pairs_for(&self, pairs: &[String], schema: &Value) -> Result<Params> {
        let mut map: Map<String, Value> = serde_json::from_str(&self.0)
            .map_err(|e| Error::Internal(format!("canonical params do not parse: {e}")))?;
        for pair in pairs {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| Error::ParamsSyntax(format!("--param '{pair}' is not KEY=VALUE")))?;
            let value = match serde_json::from_str::<Value>(v) {
                Ok(parsed) => parsed,
                Err(_) if v.contains(',') => Value::Array(
                    v.split(',')
                        .map(|s| Value::String(s.trim().to_owned()))
                        .collect(),
                ),
                Err(_) => Value::String(v.to_owned()),
            };
            let k = k.trim();
            let value = match schema["properties"][k]["type"].as_str() {
                Some("array") if !value.is_array() => Value::Array(vec![value]),
                Some("string") if !value.is_string() => Value::String(v.to_owned()),
                _ => value,
            };
            map.insert(k.to_owned(), value);
        }
        Ok(Params(Value::Object(map).to_string()))
    }

    /// The canonical JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
