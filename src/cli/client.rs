//! A blocking client of the control socket, shared by the client commands.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::config::Loaded;
use crate::doors::socket::paths;

/// One connection to the daemon.
pub struct Client {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects to the socket the configuration names.
    pub fn connect(config: &Loaded) -> anyhow::Result<Client> {
        let socket = paths::socket_path(&config.config.daemon);
        let stream = UnixStream::connect(&socket).with_context(|| {
            format!(
                "cannot reach voxd at {}; is it running? Start it with `voxd serve`",
                socket.display()
            )
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            socket,
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    /// Sends `cmd` with `args` and returns the request's id.
    pub fn send(&mut self, cmd: &str, args: Value) -> anyhow::Result<Value> {
        let id = json!(self.next_id);
        self.next_id += 1;
        let mut request = json!({ "id": id, "cmd": cmd });
        if let (Some(req), Value::Object(args)) = (request.as_object_mut(), args) {
            req.extend(args);
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot write to {}", self.socket.display()))?;
        Ok(id)
    }

    /// The next message from the daemon, or `None` when it closed the connection.
    pub fn next_message(&mut self) -> anyhow::Result<Option<Value>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&line).with_context(|| {
            format!("voxd sent a line that is not JSON: {line:?}")
        })?))
    }

    /// Waits for the reply to `id`: its result, or its error as an `Err`.
    pub fn reply(&mut self, id: &Value) -> anyhow::Result<Value> {
        self.reply_with_events(id, |_, _| {})
    }

    /// Like [`Client::reply`], passing the events streamed for `id` before
    /// the reply to `on_event(name, data)`.
    pub fn reply_with_events(
        &mut self,
        id: &Value,
        mut on_event: impl FnMut(&str, &Value),
    ) -> anyhow::Result<Value> {
        while let Some(msg) = self.next_message()? {
            if msg.get("id") != Some(id) {
                continue;
            }
            if let Some(event) = msg.get("event") {
                on_event(event.as_str().unwrap_or(""), &msg["data"]);
                continue;
            }
            if msg["ok"] == json!(true) {
                return Ok(msg["result"].clone());
            }
            let error = &msg["error"];
            bail!(
                "{}: {}",
                error["code"].as_str().unwrap_or("error"),
                error["message"].as_str().unwrap_or("(no message)")
            );
        }
        bail!("voxd closed the connection before replying")
    }

    /// Sends a request and waits for its reply.
    pub fn call(&mut self, cmd: &str, args: Value) -> anyhow::Result<Value> {
        let id = self.send(cmd, args)?;
        self.reply(&id)
    }
}
