//! The dashboard under load while the lab writes: the real `cellos dashboard` process, eight clients
//! asking for a campaign's wells at once (its page reads them in two halves on two connections), and a
//! writer committing wells to the campaign's first and last iterations in one transaction each. Every
//! answer must hold each transaction whole or not at all: two halves of two snapshots never make one
//! answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use cellos_host::store::Store;
use rusqlite::params;

const BIN: &str = env!("CARGO_BIN_EXE_cellos");
const ITERATIONS: i64 = 40;
const WELLS: i64 = 30;
const CLIENTS: usize = 8;
const REQUESTS: usize = 12;

/// The server, killed (SIGKILL) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cellos dashboard` on a free port and returns it with its address (from its first line).
fn serve(dir: &std::path::Path) -> (Server, String) {
    let mut child = Command::new(BIN)
        .args(["--data-dir", dir.to_str().unwrap(), "dashboard", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split('/').next()).unwrap_or_else(|| panic!("{line}"));
    (Server(child), addr.to_string())
}

/// GET `path`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The body may come chunked.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}

#[test]
fn answers_under_concurrent_writes_hold_each_commit_whole() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        store
            .campaigns
            .execute(
                "INSERT INTO campaigns (campaign_id, campaign_type, goal, status, config, created_at) VALUES \
                 ('c', 'dose_finding', 'optimal_tbhp_dose', 'running', '{\"lines\": [\"U2OS\"]}', '2026-01-01')",
                [],
            )
            .unwrap();
        let tx = store.results.transaction().unwrap();
        for it in 1..=ITERATIONS {
            for w in 0..WELLS {
                tx.execute(
                    "INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, raw_signal, viability_norm, \
                     segmentation, is_control, campaign_id, iteration) VALUES (?1, ?2, 'U2OS', 'tbhp', ?3, 100, 0.9, 0.9, 0, 'c', ?4)",
                    params![format!("P{it}"), format!("W{w}"), 1.0 + w as f64, it],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let (_server, addr) = serve(dir.path());
    let done = AtomicBool::new(false);
    let (answers, commits) = std::thread::scope(|s| {
        // The writer: pair k is a well in iteration 1 and a well in the last iteration, in one commit.
        let writer = s.spawn(|| {
            let store = Store::open(dir.path()).unwrap();
            let mut k = 0i64;
            while !done.load(Ordering::Relaxed) {
                store
                    .results
                    .execute_batch(&format!(
                        "BEGIN; \
                         INSERT INTO measurements (plate_id, well_id, cell_line, compound, dose_uM, campaign_id, iteration) \
                         VALUES ('late', 'a{k}', 'U2OS', 'tbhp', 2, 'c', 1), ('late', 'b{k}', 'U2OS', 'tbhp', 2, 'c', {ITERATIONS}); \
                         COMMIT;"
                    ))
                    .unwrap();
                k += 1;
            }
            k
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| s.spawn(|| (0..REQUESTS).map(|_| get(&addr, "/campaigns/c/measurements.csv")).collect::<Vec<_>>()))
            .collect();
        let answers: Vec<(u16, String)> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        (answers, writer.join().unwrap())
    });
    assert!(commits > 0);
    let mut newest_seen = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let mut r = csv::Reader::from_reader(body.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let late = |prefix: char| -> Vec<i64> {
            rows.iter().filter_map(|row| row[8].strip_prefix(prefix).map(|k| k.parse().unwrap())).collect()
        };
        let (a, b) = (late('a'), late('b'));
        // Each commit whole or not at all, and the commits a prefix of the writer's.
        assert_eq!(a, b, "an answer joined two snapshots");
        assert_eq!(a, (0..a.len() as i64).collect::<Vec<_>>());
        assert_eq!(rows.len() as i64, ITERATIONS * WELLS + 2 * a.len() as i64);
        // In iteration order.
        let iterations: Vec<i64> = rows.iter().map(|row| row[0].parse().unwrap()).collect();
        assert!(iterations.windows(2).all(|w| w[0] <= w[1]));
        newest_seen = newest_seen.max(a.len());
    }
    assert!(newest_seen > 0, "no answer saw a commit: the probe tested nothing");
}
