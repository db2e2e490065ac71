//! What a matched command does: run a program (an argv, never a shell),
//! send an HTTP request, or both, within the command's timeout. Slot values
//! fill `{slot}` placeholders in the argv's arguments, the URL (percent-
//! encoded), the header values and the JSON body's strings; a program also
//! gets each slot as `VOXD_SLOT_<NAME>` in its environment.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::slots::SlotValue;

/// Most bytes of a program's output (each stream) or an HTTP answer kept
/// for the log.
const LOG_BYTES: usize = 2048;

/// A command's action, as configured.
#[derive(Debug)]
pub struct Action {
    /// argv; empty: no program.
    pub run: Vec<String>,
    pub http: Option<HttpAction>,
    /// For the program and the request, each.
    pub timeout: Duration,
}

/// An HTTP request, as configured.
#[derive(Debug)]
pub struct HttpAction {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// A JSON body whose strings may name slots.
    pub body: Option<serde_json::Value>,
}

impl HttpAction {
    /// Checks the method and URL; the body (TOML) becomes JSON.
    pub fn new(
        method: &str,
        url: String,
        headers: BTreeMap<String, String>,
        body: Option<toml::Value>,
    ) -> Result<HttpAction, String> {
        let method = method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(format!(
                "http method {method:?}: one of GET, POST, PUT, PATCH, DELETE"
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "http url {url:?} must start with http:// or https://"
            ));
        }
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| format!("http body: {e}"))?;
        Ok(HttpAction {
            method,
            url,
            headers,
            body,
        })
    }
}

/// A command's slot values, by slot name.
pub type Slots = BTreeMap<String, SlotValue>;

impl Action {
    /// Every configured string that may name slots.
    pub fn templates(&self) -> Vec<&str> {
        fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match value {
                serde_json::Value::String(s) => out.push(s),
                serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let mut out: Vec<&str> = self.run.iter().map(String::as_str).collect();
        if let Some(http) = &self.http {
            out.push(&http.url);
            out.extend(http.headers.values().map(String::as_str));
            if let Some(body) = &http.body {
                strings(body, &mut out);
            }
        }
        out
    }

    /// The action with `slots` filled in, ready to perform (or show).
    pub fn prepare(&self, slots: &Slots) -> Prepared {
        let plain = |name: &str| slots.get(name).map(SlotValue::plain);
        Prepared {
            run: self.run.iter().map(|arg| fill(arg, plain)).collect(),
            env: slots
                .iter()
                .map(|(name, v)| (format!("VOXD_SLOT_{}", name.to_uppercase()), v.plain()))
                .collect(),
            http: self.http.as_ref().map(|http| PreparedHttp {
                method: http.method.clone(),
                url: fill(&http.url, |name| plain(name).map(|v| url_encoded(&v))),
                headers: http
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v, plain)))
                    .collect(),
                body: http
                    .body
                    .as_ref()
                    .map(|b| json_filled(b, slots).to_string()),
            }),
            timeout: self.timeout,
        }
    }
}

/// An action with its slot values in place.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// argv; empty: no program.
    pub run: Vec<String>,
    /// `VOXD_SLOT_<NAME>` variables the program gets.
    pub env: BTreeMap<String, String>,
    pub http: Option<PreparedHttp>,
    #[serde(rename = "timeout_secs", serialize_with = "secs")]
    pub timeout: Duration,
}

/// An HTTP request with its slot values in place.
#[derive(Debug, Clone, Serialize)]
pub struct PreparedHttp {
    pub method: String,
    pub url: String,
    /// Shown by name only: values may be secrets (a bearer token).
    #[serde(serialize_with = "names")]
    pub headers: BTreeMap<String, String>,
    /// JSON.
    pub body: Option<String>,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn names<S: Serializer>(headers: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(headers.keys())
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status})")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
    },
    #[error("{program} did not finish within {secs} s and was killed")]
    Killed { program: String, secs: f64 },
    #[error("{method} {url}: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
    },
}

impl ActionError {
    /// Whether the action ran out of time.
    pub fn timed_out(&self) -> bool {
        matches!(self, ActionError::Killed { .. })
    }
}

impl Prepared {
    /// Runs the program, then sends the request; the first failure ends it.
    pub async fn perform(&self, command: &str) -> Result<(), ActionError> {
        if !self.run.is_empty() {
            self.run_program(command).await?;
        }
        if let Some(http) = &self.http {
            http.send(command, self.timeout).await?;
        }
        Ok(())
    }

    /// The program in its own process group, output captured to the log;
    /// at the timeout the whole group is killed.
    async fn run_program(&self, command: &str) -> Result<(), ActionError> {
        let program = self.run[0].clone();
        let child = tokio::process::Command::new(&program)
            .args(&self.run[1..])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ActionError::Start {
                program: program.clone(),
                source,
            })?;
        let pid = child.id();
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                tracing::info!(
                    command,
                    program,
                    status = %out.status,
                    stdout = %tail(&out.stdout),
                    stderr = %tail(&out.stderr),
                    "command program ended"
                );
                if out.status.success() {
                    Ok(())
                } else {
                    Err(ActionError::Failed {
                        program,
                        status: out.status,
                    })
                }
            }
            Ok(Err(source)) => Err(ActionError::Start { program, source }),
            Err(_) => {
                // The child itself dies with its handle (kill_on_drop);
                // what it started, with its group.
                if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                tracing::warn!(command, program, timeout = ?self.timeout, "command program killed at its timeout");
                Err(ActionError::Killed {
                    program,
                    secs: self.timeout.as_secs_f64(),
                })
            }
        }
    }
}

impl PreparedHttp {
    async fn send(&self, command: &str, timeout: Duration) -> Result<(), ActionError> {
        let failed = |message: String| ActionError::Http {
            method: self.method.clone(),
            url: self.url.clone(),
            message,
        };
        let answer = self.answer(timeout).await.map_err(|e| {
            let message = causes(&e);
            tracing::warn!(command, method = %self.method, url = %self.url, %message, "command request failed");
            failed(message)
        })?;
        let (status, body) = answer;
        tracing::info!(command, method = %self.method, url = %self.url, %status, body = %tail(body.as_bytes()), "command request answered");
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("answered {status}")))
        }
    }

    /// The answer's status and body.
    async fn answer(
        &self,
        timeout: Duration,
    ) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        // The method was checked when the file was read.
        let method =
            reqwest::Method::from_bytes(self.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut request = client.request(method, &self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

/// An error and its causes, as one line ("error sending request …:
/// connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `{name}` placeholders in `template` (names of letters, digits and `_`).
pub fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| {
        let (name, _) = part.split_once('}')?;
        is_name(name).then_some(name)
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `template` with each `{name}` that `value` knows replaced; other braces
/// stay as they are.
pub fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.split_once('}') {
            Some((name, tail)) if is_name(name) => match value(name) {
                Some(v) => {
                    out.push_str(&v);
                    rest = tail;
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            },
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON body with its strings filled; a string that is one placeholder of
/// a number or duration becomes that number.
fn json_filled(value: &serde_json::Value, slots: &Slots) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let whole = s
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .and_then(|name| slots.get(name));
            match whole {
                Some(v) if v.number().is_some() => serde_json::to_value(v).unwrap_or(Value::Null),
                _ => Value::String(fill(s, |name| slots.get(name).map(SlotValue::plain))),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| json_filled(v, slots)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_filled(v, slots)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The end of some output, as text, for the log.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut start = text.len().saturating_sub(LOG_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_whole_arguments_urls_and_bodies() {
        let slots = Slots::from([
            ("device".to_string(), SlotValue::List("desk lamp".into())),
            ("level".to_string(), SlotValue::Number(25.0)),
        ]);
        assert_eq!(
            placeholders("{device} at {level}, {not a slot} {}").collect::<Vec<_>>(),
            ["device", "level"]
        );
        assert_eq!(
            fill("{device}: {level}% {x} {", |n| slots
                .get(n)
                .map(SlotValue::plain)),
            "desk lamp: 25% {x} {"
        );
        let action = Action {
            run: vec![
                "/bin/power".into(),
                "{device}".into(),
                "--level={level}".into(),
            ],
            http: Some(
                HttpAction::new(
                    "post",
                    "http://h/api/{device}".into(),
                    BTreeMap::from([("Authorization".into(), "Bearer x".into())]),
                    Some(toml::from_str("name = \"{device}\"\nlevel = \"{level}\"").unwrap()),
                )
                .unwrap(),
            ),
            timeout: Duration::from_secs(3),
        };
        let p = action.prepare(&slots);
        assert_eq!(p.run, ["/bin/power", "desk lamp", "--level=25"]);
        assert_eq!(p.env["VOXD_SLOT_DEVICE"], "desk lamp");
        let http = p.http.unwrap();
        assert_eq!(http.url, "http://h/api/desk%20lamp");
        assert_eq!(http.body.unwrap(), r#"{"level":25,"name":"desk lamp"}"#);
    }
}
