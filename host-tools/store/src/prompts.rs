//! What a campaign asks its operator, and the answers (`campaigns.db`). A prompt is keyed by an id the
//! campaign derives from its plan, so that asking again after a restart finds the answer already given;
//! an answer is given once.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::time::now;

/// A prompt as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// Its id, unique in its campaign.
    pub prompt_id: String,
    /// `confirm` or `upload`.
    pub kind: String,
    /// What the operator is asked, in words.
    pub text: String,
    /// What an answer must hold.
    pub spec: Value,
    /// The answer, once given.
    pub answer: Option<Value>,
    /// Who gave it (a token's name, or `cli`).
    pub answered_by: Option<String>,
}

/// Records a prompt of `campaign`, unless it was asked before (then the stored one is kept, answered or
/// not); returns the prompt as stored.
pub fn ask(db: &Connection, campaign: &str, prompt_id: &str, kind: &str, text: &str, spec: &Value) -> Result<Prompt> {
    db.execute(
        "INSERT INTO operator_prompts (campaign_id, prompt_id, kind, text, spec, asked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (campaign_id, prompt_id) DO NOTHING",
        params![campaign, prompt_id, kind, text, spec.to_string(), now()],
    )?;
    get(db, campaign, prompt_id)?.ok_or_else(|| {
        StoreError::NotFound(format!("prompt `{prompt_id}` of campaign `{campaign}` after it was written"))
    })
}

/// A prompt of `campaign`, if asked.
pub fn get(db: &Connection, campaign: &str, prompt_id: &str) -> Result<Option<Prompt>> {
    let row = db
        .query_row(
            "SELECT kind, text, spec, answer, answered_by FROM operator_prompts WHERE campaign_id = ?1 AND prompt_id = ?2",
            params![campaign, prompt_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, text, spec, answer, answered_by)) = row else { return Ok(None) };
    let json = |what: &str, t: &str| {
        serde_json::from_str(t).map_err(|e| {
            StoreError::Invalid(format!("the {what} of prompt `{prompt_id}` of campaign `{campaign}`: {e}"))
        })
    };
    Ok(Some(Prompt {
        prompt_id: prompt_id.to_string(),
        kind,
        text,
        spec: json("spec", &spec)?,
        answer: answer.as_deref().map(|a| json("answer", a)).transpose()?,
        answered_by,
    }))
}

/// The prompts of `campaign` still waiting for an answer, oldest first.
pub fn open(db: &Connection, campaign: &str) -> Result<Vec<Prompt>> {
    let mut st = db.prepare_cached(
        "SELECT prompt_id FROM operator_prompts WHERE campaign_id = ?1 AND answer IS NULL ORDER BY asked_at, prompt_id",
    )?;
    let ids: Vec<String> = st.query_map([campaign], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    ids.iter().filter_map(|id| get(db, campaign, id).transpose()).collect()
}

/// Records the answer to an open prompt. Returns `false` (and changes nothing) when the prompt was
/// answered already or was never asked.
pub fn answer(db: &Connection, campaign: &str, prompt_id: &str, answer: &Value, by: &str) -> Result<bool> {
    let n = db.execute(
        "UPDATE operator_prompts SET answer = ?3, answered_by = ?4, answered_at = ?5
         WHERE campaign_id = ?1 AND prompt_id = ?2 AND answer IS NULL",
        params![campaign, prompt_id, answer.to_string(), by, now()],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_prompt_is_asked_once_and_answered_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), crate::Db::Campaigns).unwrap();
        db.execute(
            "INSERT INTO campaigns (campaign_id, campaign_type, status) VALUES ('c', 'dose_finding', 'running')",
            [],
        )
        .unwrap();
        let spec = json!({ "plate": "ASSAY_1", "wells": ["B2"] });
        let p = ask(&db, "c", "i1-read", "upload", "Read ASSAY_1", &spec).unwrap();
        assert_eq!((p.kind.as_str(), p.answer.clone()), ("upload", None));
        // Asked again (a restart): the same prompt, not a second one.
        assert_eq!(ask(&db, "c", "i1-read", "upload", "other text", &json!({})).unwrap(), p);
        assert_eq!(open(&db, "c").unwrap(), vec![p.clone()]);
        assert!(!answer(&db, "c", "nope", &json!({}), "t").unwrap(), "never asked");
        assert!(answer(&db, "c", "i1-read", &json!({ "B2": 1.5 }), "operator").unwrap());
        assert!(!answer(&db, "c", "i1-read", &json!({ "B2": 9.0 }), "other").unwrap(), "answered once");
        let got = get(&db, "c", "i1-read").unwrap().unwrap();
        assert_eq!((got.answer, got.answered_by.as_deref()), (Some(json!({ "B2": 1.5 })), Some("operator")));
        assert!(open(&db, "c").unwrap().is_empty());
        assert!(
            ask(&db, "nobody", "x", "confirm", "t", &json!({})).is_err(),
            "a prompt belongs to a campaign that exists"
        );
        assert!(ask(&db, "c", "x", "shout", "t", &json!({})).is_err(), "the schema checks the kind");
    }
}
