//! Recorded sessions: every message on every instrument line, both ways, with time stamps, as lines of
//! text (`--capture FILE` on any gateway command), and the replay of a recording in place of the
//! instrument (the line `replay:FILE`, or `cellos-gateway replay FILE`).
//!
//! The format, a line per message after a header:
//!
//! ```text
//! # cellos capture 1
//! # command: ["worklist","run","fill.gwl","--instrument","star","--port","/dev/ttyUSB0"]
//! 0.000412 star > C0DIid0001
//! 0.302118 star < C0DIid0001er00/00
//! ```
//!
//! Seconds since the start (µs), the line (`star`, `evo`, `wire`), `>` to the instrument or `<` from it,
//! and the message: as text when it is printable ASCII (and does not begin with `hex:`), else `hex:` and
//! its bytes in hex. Lines beginning with `#` are comments.
//!
//! **Replay.** A replay line checks each message the driver sends against the recording's next `>` of
//! that line and fails at the first that differs, naming the recording's line; the recorded replies are
//! handed back in order. STAR command ids (the four digits after `id`) differ from run to run: they are
//! matched as any id, and a recorded reply's id becomes the id actually sent.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::{LinkRx, LinkTx, Protocol};
use crate::error::GatewayError;

/// The line's name in a recording.
pub fn label(p: Protocol) -> &'static str {
    match p {
        Protocol::Star => "star",
        Protocol::Evo => "evo",
        Protocol::Wire => "wire",
    }
}

struct Sink {
    file: std::fs::File,
    started: Instant,
    path: PathBuf,
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();

/// Starts recording into `path` (made anew), the header naming the command `args`.
pub fn start(path: &Path, args: &[String]) -> Result<(), GatewayError> {
    let io = |source| GatewayError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::create(path).map_err(io)?;
    let command = serde_json::to_string(args).unwrap_or_default();
    writeln!(file, "# cellos capture 1\n# command: {command}").map_err(io)?;
    let _ = SINK.set(Mutex::new(Sink { file, started: Instant::now(), path: path.to_path_buf() }));
    Ok(())
}

/// The text of a message in a recording.
pub fn encode(message: &[u8]) -> String {
    let printable = message.iter().all(|b| (0x20..0x7f).contains(b));
    if printable && !message.starts_with(b"hex:") {
        String::from_utf8_lossy(message).into_owned()
    } else {
        let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
        format!("hex:{hex}")
    }
}

/// A message back from its text in a recording.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    match text.strip_prefix("hex:") {
        Some(hex) => {
            (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
        }
        None => Some(text.as_bytes().to_vec()),
    }
}

/// Records one message, when a recording runs. A recording that cannot be written is reported once and
/// stops (the session goes on).
pub fn record(protocol: Protocol, to_instrument: bool, message: &[u8]) {
    let Some(sink) = SINK.get() else { return };
    let Ok(mut s) = sink.lock() else { return };
    let t = s.started.elapsed().as_secs_f64();
    let dir = if to_instrument { '>' } else { '<' };
    let line = format!("{t:.6} {} {dir} {}\n", label(protocol), encode(message));
    if let Err(e) = s.file.write_all(line.as_bytes()) {
        say!("warning: the capture {} is not written: {e}", s.path.display());
    }
}

/// One message of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Its line in the file, from 1.
    pub line: usize,
    /// `star`, `evo` or `wire`.
    pub label: String,
    /// To the instrument.
    pub to_instrument: bool,
    /// The message.
    pub message: Vec<u8>,
}

/// A recording: its command and its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// The command that made it.
    pub command: Vec<String>,
    /// Its messages, in order.
    pub messages: Vec<Recorded>,
}

/// Reads a recording; every malformed line is an error naming it.
pub fn read(path: &Path) -> Result<Recording, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|source| GatewayError::Io { path: path.to_path_buf(), source })?;
    let bad =
        |line: usize, m: &str| GatewayError::Config { path: path.to_path_buf(), message: format!("line {line}: {m}") };
    let mut command = Vec::new();
    let mut messages = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(c) = l.strip_prefix("# command: ") {
            command = serde_json::from_str(c).map_err(|e| bad(n, &format!("the command: {e}")))?;
            continue;
        }
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut parts = l.splitn(4, ' ');
        let (Some(t), Some(label), Some(dir), Some(message)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(n, "expected `SECONDS LINE >|< MESSAGE`"));
        };
        t.parse::<f64>().map_err(|_| bad(n, &format!("`{t}` is not a time in seconds")))?;
        if !matches!(label, "star" | "evo" | "wire") {
            return Err(bad(n, &format!("line `{label}`: star, evo or wire")));
        }
        let to_instrument = match dir {
            ">" => true,
            "<" => false,
            other => return Err(bad(n, &format!("direction `{other}`: > or <"))),
        };
        let message = decode(message).ok_or_else(|| bad(n, "malformed hex"))?;
        messages.push(Recorded { line: n, label: label.to_string(), to_instrument, message });
    }
    Ok(Recording { command, messages })
}

/// The position of a STAR command's id (`C0RFid0001`: the four digits after `id`).
fn star_id(m: &[u8]) -> Option<std::ops::Range<usize>> {
    (m.len() >= 10 && &m[4..6] == b"id" && m[6..10].iter().all(u8::is_ascii_digit)).then_some(6..10)
}

struct ReplayState {
    file: PathBuf,
    protocol: Protocol,
    messages: Vec<Recorded>,
    next: usize,
    replies: VecDeque<Vec<u8>>,
    /// Recorded STAR id → the id sent in its place.
    ids: HashMap<Vec<u8>, Vec<u8>>,
}

impl ReplayState {
    /// Releases the recorded replies up to the next message to the instrument.
    fn release(&mut self) {
        while let Some(m) = self.messages.get(self.next).filter(|m| !m.to_instrument) {
            let mut reply = m.message.clone();
            if self.protocol == Protocol::Star
                && let Some(r) = star_id(&reply)
                && let Some(sent) = self.ids.get(&reply[r.clone()])
            {
                reply.splice(r, sent.iter().copied());
            }
            self.replies.push_back(reply);
            self.next += 1;
        }
    }
}

/// The sending half of a replay line.
pub struct ReplayTx(Arc<(Mutex<ReplayState>, tokio::sync::Notify)>);
/// The receiving half of a replay line.
pub struct ReplayRx(Arc<(Mutex<ReplayState>, tokio::sync::Notify)>);

/// A line that replays `path`'s messages of `protocol`'s line.
pub fn replay(path: &Path, protocol: Protocol) -> Result<(ReplayTx, ReplayRx), GatewayError> {
    let rec = read(path)?;
    let messages: Vec<Recorded> = rec.messages.into_iter().filter(|m| m.label == label(protocol)).collect();
    if messages.is_empty() {
        return Err(GatewayError::Config {
            path: path.to_path_buf(),
            message: format!("the recording has no message on the {} line", label(protocol)),
        });
    }
    let state = ReplayState {
        file: path.to_path_buf(),
        protocol,
        messages,
        next: 0,
        replies: VecDeque::new(),
        ids: HashMap::new(),
    };
    let shared = Arc::new((Mutex::new(state), tokio::sync::Notify::new()));
    Ok((ReplayTx(shared.clone()), ReplayRx(shared)))
}

impl LinkTx for ReplayTx {
    async fn send(&mut self, message: &[u8]) -> Result<(), GatewayError> {
        let (lock, notify) = &*self.0;
        let mut s = lock.lock().map_err(|_| GatewayError::Closed)?;
        s.release();
        let file = s.file.display().to_string();
        let Some(want) = s.messages.get(s.next).cloned() else {
            return Err(GatewayError::Link(format!(
                "replay {file}: sent `{}` after the recording's last message",
                encode(message)
            )));
        };
        let same = match (s.protocol, star_id(message), star_id(&want.message)) {
            (Protocol::Star, Some(a), Some(b)) => {
                message[..a.start] == want.message[..b.start] && message[a.end..] == want.message[b.end..]
            }
            _ => message == want.message.as_slice(),
        };
        if !same {
            return Err(GatewayError::Link(format!(
                "replay {file} line {}: sent `{}`, the recording has `{}`",
                want.line,
                encode(message),
                encode(&want.message)
            )));
        }
        if let (Protocol::Star, Some(a), Some(b)) = (s.protocol, star_id(message), star_id(&want.message)) {
            s.ids.insert(want.message[b].to_vec(), message[a].to_vec());
        }
        s.next += 1;
        s.release();
        drop(s);
        notify.notify_waiters();
        Ok(())
    }
}

impl LinkRx for ReplayRx {
    async fn recv(&mut self) -> Result<Option<Vec<u8>>, GatewayError> {
        let (lock, notify) = &*self.0;
        loop {
            let waiting = notify.notified();
            {
                let mut s = lock.lock().map_err(|_| GatewayError::Closed)?;
                if let Some(r) = s.replies.pop_front() {
                    return Ok(Some(r));
                }
                if s.next >= s.messages.len() {
                    // The recording is over: the line closes.
                    return Ok(None);
                }
            }
            waiting.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_recorded() {
        for m in [&b"C0RFid0001"[..], b"\x02C5,RPX0\x00", b"hex:literal", b"", b"a b  c"] {
            assert_eq!(decode(&encode(m)).unwrap(), m, "{m:?}");
        }
        assert_eq!(encode(b"\x02C5"), "hex:024335");
        assert_eq!(decode("hex:0g"), None);
        assert_eq!(star_id(b"C0RFid0001er00/00"), Some(6..10));
        assert_eq!(star_id(b"C0RF"), None);
    }

    #[test]
    fn a_replay_checks_what_is_sent_and_answers_as_recorded() {
        let dir = std::env::temp_dir().join(format!("cellos-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.cap");
        std::fs::write(
            &path,
            "# cellos capture 1\n# command: [\"probe\"]\n0.1 star > C0RFid0007\n0.2 star < C0RFid0007er00/00rf1\n0.3 star > C0DIid0008\n0.4 star < C0DIid0008er00/00\n",
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (mut tx, mut rx) = replay(&path, Protocol::Star).unwrap();
            tx.send(b"C0RFid4242").await.unwrap();
            assert_eq!(rx.recv().await.unwrap().unwrap(), b"C0RFid4242er00/00rf1", "the id sent, in the reply");
            let e = tx.send(b"C0DIid4243xx").await.unwrap_err().to_string();
            assert!(e.contains("r.cap line 5: sent `C0DIid4243xx`, the recording has `C0DIid0008`"), "{e}");
        });
        std::fs::write(&path, "0.1 star > x\nnot a line\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 2: expected"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
