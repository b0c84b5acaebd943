//! Who may use the gateway service (`campaigns.db`): tokens with a scope, of which only the SHA-256 is
//! kept, and the audit trail of every change, hash-chained so that an edited, inserted or deleted row
//! shows.
//!
//! The chain proves the trail was not changed *by someone who cannot recompute it*: anyone who can
//! rewrite the database can also rewrite every hash after the row they change, and a deleted last row
//! leaves no gap. `verify` finds a row changed by hand, a row taken out of the middle, and a row put in.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::time::now;

/// What a token may do. Each scope includes the ones below it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read runs, instruments and events.
    Read,
    /// Also submit runs, act on them, answer prompts.
    Operate,
    /// Also manage tokens.
    Admin,
}

impl Scope {
    /// The word stored and given on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
        }
    }

    /// The scope of a word.
    pub fn parse(s: &str) -> Option<Scope> {
        [Scope::Read, Scope::Operate, Scope::Admin].into_iter().find(|x| x.as_str() == s)
    }

    /// Whether this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl ToSql for Scope {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
    }
}

impl FromSql for Scope {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Scope::parse(s).ok_or_else(|| FromSqlError::Other(format!("scope `{s}`").into()))
    }
}

/// A token as stored (without the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Makes a token named `name` with `scope`; returns it (shown once: only its hash is kept). Its 32
/// random bytes come from the operating system.
pub fn create_token(db: &Connection, name: &str, scope: Scope) -> Result<(Token, String)> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid("a token needs a name".into()));
    }
    let mut random = [0u8; 32];
    let path = std::path::Path::new("/dev/urandom");
    std::io::Read::read_exact(
        &mut std::fs::File::open(path).map_err(|source| StoreError::Io { path: path.into(), source })?,
        &mut random,
    )
    .map_err(|source| StoreError::Io { path: path.into(), source })?;
    let secret = format!("cellos_{}", hex(&random));
    let at = now();
    db.execute(
        "INSERT INTO tokens (name, scope, sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, scope, sha256(&secret), at],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Invalid(format!("a token named `{name}` exists (revoked or not): choose another name"))
        }
        other => other.into(),
    })?;
    Ok((Token { name: name.to_string(), scope, created_at: at, revoked_at: None }, secret))
}

/// The token a secret belongs to, if it is one and not revoked.
pub fn authenticate(db: &Connection, secret: &str) -> Result<Option<Token>> {
    Ok(db
        .query_row(
            "SELECT name, scope, created_at, revoked_at FROM tokens WHERE sha256 = ?1 AND revoked_at IS NULL",
            [sha256(secret)],
            |r| Ok(Token { name: r.get(0)?, scope: r.get(1)?, created_at: r.get(2)?, revoked_at: r.get(3)? }),
        )
        .optional()?)
}

/// Every token, oldest first.
pub fn tokens(db: &Connection) -> Result<Vec<Token>> {
    let mut st = db.prepare("SELECT name, scope, created_at, revoked_at FROM tokens ORDER BY token_id")?;
    let rows = st
        .query_map([], |r| {
            Ok(Token { name: r.get(0)?, scope: r.get(1)?, created_at: r.get(2)?, revoked_at: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Revokes the token named `name`; an unknown or already revoked name is an error.
pub fn revoke_token(db: &Connection, name: &str) -> Result<()> {
    let n =
        db.execute("UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL", params![name, now()])?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no token `{name}` in use (see `token list`)")));
    }
    Ok(())
}

/// One change, as the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    /// The token's name (or `cli` for a local command).
    pub token: &'a str,
    /// What was asked (`create run`, `pause`, `revoke token`…).
    pub action: &'a str,
    /// What it was asked of (a run id, a token name).
    pub target: &'a str,
    /// What came of it (`ok`, or the error).
    pub result: &'a str,
}

/// The hash of a row: its fields, each with its length, after the previous row's hash, so that no two
/// different rows hash alike by moving text between fields.
fn row_hash(prev: &str, entry_id: i64, at: &str, c: &Change<'_>) -> String {
    let mut h = Sha256::new();
    for field in [prev, &entry_id.to_string(), at, c.token, c.action, c.target, c.result] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize())
}

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appends a change to the audit trail (one immediate transaction, so two writers chain one after the
/// other); returns its entry id.
pub fn record(db: &mut Connection, c: &Change<'_>) -> Result<i64> {
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last: Option<(i64, String)> = tx
        .query_row("SELECT entry_id, hash FROM audit ORDER BY entry_id DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (id, prev) = last.map_or((1, GENESIS.to_string()), |(i, h)| (i + 1, h));
    let at = now();
    let hash = row_hash(&prev, id, &at, c);
    tx.execute(
        "INSERT INTO audit (entry_id, at, token, action, target, result, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, at, c.token, c.action, c.target, c.result, prev, hash],
    )?;
    tx.commit()?;
    Ok(id)
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every row is as written, in an unbroken chain.
    Intact {
        /// Rows checked.
        rows: u64,
    },
    /// The first row where the trail was changed.
    Broken {
        /// Its entry id.
        entry_id: i64,
        /// How.
        why: Break,
    },
}

/// How the chain breaks at a row.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Break {
    /// The row's fields do not give its hash: it was edited.
    Edited,
    /// Its number does not follow the row before: a row before it was deleted.
    Deleted,
    /// It does not point to the row before it: the row before was put in (or replaced) by hand.
    Inserted,
}

/// Walks the audit trail and reports the first row that was edited, inserted or deleted.
pub fn verify(db: &Connection) -> Result<Verdict> {
    let mut st =
        db.prepare("SELECT entry_id, at, token, action, target, result, prev_hash, hash FROM audit ORDER BY entry_id")?;
    let mut rows = st.query([])?;
    let (mut prev, mut expected_id, mut n) = (GENESIS.to_string(), 1i64, 0u64);
    while let Some(r) = rows.next()? {
        let (id, at, token, action, target, result, prev_hash, hash): (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
        let change = Change { token: &token, action: &action, target: &target, result: &result };
        if row_hash(&prev_hash, id, &at, &change) != hash {
            return Ok(Verdict::Broken { entry_id: id, why: Break::Edited });
        }
        if id != expected_id {
            return Ok(Verdict::Broken { entry_id: id, why: Break::Deleted });
        }
        if prev_hash != prev {
            return Ok(Verdict::Broken { entry_id: id, why: Break::Inserted });
        }
        prev = hash;
        expected_id = id + 1;
        n += 1;
    }
    Ok(Verdict::Intact { rows: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Db, open};

    #[test]
    fn tokens_are_kept_as_hashes_with_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), Db::Campaigns).unwrap();
        let (t, secret) = create_token(&db, "lab-pc", Scope::Operate).unwrap();
        assert!(secret.starts_with("cellos_") && secret.len() == 7 + 64, "{secret}");
        let stored: String = db.query_row("SELECT sha256 FROM tokens", [], |r| r.get(0)).unwrap();
        assert!(!stored.contains(&secret[7..]) && stored.len() == 64, "only the hash is kept");
        assert_eq!(authenticate(&db, &secret).unwrap(), Some(t));
        assert_eq!(authenticate(&db, "cellos_0000").unwrap(), None);
        let (_, other) = create_token(&db, "viewer", Scope::Read).unwrap();
        assert_ne!(other, secret);
        assert!(create_token(&db, "lab-pc", Scope::Admin).unwrap_err().to_string().contains("exists"));
        assert!(create_token(&db, " ", Scope::Admin).is_err());
        revoke_token(&db, "lab-pc").unwrap();
        assert_eq!(authenticate(&db, &secret).unwrap(), None, "revoked");
        assert!(revoke_token(&db, "lab-pc").is_err(), "revoked once");
        let all = tokens(&db).unwrap();
        assert_eq!((all.len(), all[0].revoked_at.is_some(), all[1].scope), (2, true, Scope::Read));
        assert!(Scope::Admin.allows(Scope::Operate) && Scope::Operate.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Operate) && !Scope::Operate.allows(Scope::Admin));
    }

    #[test]
    fn verify_finds_an_edited_a_deleted_and_an_inserted_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), Db::Campaigns).unwrap();
        for (i, action) in ["create run", "pause", "resume", "stop", "revoke token"].iter().enumerate() {
            let target = format!("run-{i}");
            let id = record(&mut db, &Change { token: "lab-pc", action, target: &target, result: "ok" }).unwrap();
            assert_eq!(id, i as i64 + 1);
        }
        assert_eq!(verify(&db).unwrap(), Verdict::Intact { rows: 5 });
        let copy = |tag: &str| {
            let d = dir.path().join(tag);
            std::fs::create_dir_all(&d).unwrap();
            db.execute(&format!("VACUUM INTO '{}'", d.join("campaigns.db").display()), []).unwrap();
            Connection::open(d.join("campaigns.db")).unwrap()
        };
        // Edited: the result of row 3 changed.
        let c = copy("edited");
        c.execute("UPDATE audit SET result = 'refused' WHERE entry_id = 3", []).unwrap();
        assert_eq!(verify(&c).unwrap(), Verdict::Broken { entry_id: 3, why: Break::Edited });
        // Deleted: row 2 taken out.
        let c = copy("deleted");
        c.execute("DELETE FROM audit WHERE entry_id = 2", []).unwrap();
        assert_eq!(verify(&c).unwrap(), Verdict::Broken { entry_id: 3, why: Break::Deleted });
        // Deleted and renumbered, so that the numbers follow: the chain still breaks.
        let c = copy("renumbered");
        c.execute_batch(
            "DELETE FROM audit WHERE entry_id = 2; UPDATE audit SET entry_id = entry_id - 1 WHERE entry_id > 2;",
        )
        .unwrap();
        assert!(matches!(verify(&c).unwrap(), Verdict::Broken { entry_id: 2, .. }));
        // Inserted: a forged row in the place of row 3, chained to row 2 and hashing right on its own.
        let c = copy("inserted");
        let prev: String = c.query_row("SELECT hash FROM audit WHERE entry_id = 2", [], |r| r.get(0)).unwrap();
        c.execute("DELETE FROM audit WHERE entry_id = 3", []).unwrap();
        let forged = Change { token: "lab-pc", action: "create token", target: "intruder", result: "ok" };
        let at = "2026-12-01T00:00:00.000000Z";
        let hash = row_hash(&prev, 3, at, &forged);
        c.execute(
            "INSERT INTO audit (entry_id, at, token, action, target, result, prev_hash, hash) VALUES (3, ?1, 'lab-pc', 'create token', 'intruder', 'ok', ?2, ?3)",
            params![at, prev, hash],
        )
        .unwrap();
        assert_eq!(verify(&c).unwrap(), Verdict::Broken { entry_id: 4, why: Break::Inserted });
        // The trail goes on after a verification, chained to its last row.
        record(&mut db, &Change { token: "cli", action: "verify", target: "audit", result: "ok" }).unwrap();
        assert_eq!(verify(&db).unwrap(), Verdict::Intact { rows: 6 });
    }
}
