//! Operator steps: what a campaign on a bench with a manual incubator or reader asks its operator, and
//! how an answer is checked before the campaign sees it.
//!
//! A prompt is `confirm` (the operator did what the text says: put a plate in the incubator, took it
//! out) or `upload` (a plate-reader export with the wells and readouts the prompt names, see
//! [`crate::reader_export`]). Its id comes from the plan (`i3-s12-in`: iteration 3, step 12, into the
//! incubator), so a campaign restarted while waiting asks the same prompt again and an answer given
//! before the restart still counts. Prompts and answers are kept in `campaigns.db`
//! ([`cellos_store::prompts`]); the campaign polls for its answer, so the service's API and the command
//! line (`campaign answer`) answer the same way.

use cellos_core::proto::wire::Readout;
use cellos_store::prompts::Prompt;
use serde_json::{Value, json};

use crate::reader_export::{ExportError, ReaderExport, readout_name, readout_named};

/// A prompt's kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// Confirm that something was done.
    Confirm,
    /// Upload a reader export.
    Upload,
}

impl PromptKind {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptKind::Confirm => "confirm",
            PromptKind::Upload => "upload",
        }
    }
}

/// Why an answer is refused (the prompt keeps waiting).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// An upload without a file.
    #[error("this prompt wants a reader export: give its text as `content`")]
    NoContent,
    /// The file is not an export, or lacks a value.
    #[error("the reader export: {0}")]
    Export(#[from] ExportError),
    /// The prompt's own record is damaged.
    #[error("the prompt's record: {0}")]
    Spec(String),
}

/// What an upload prompt asks for: a plate's wells and readouts.
pub fn upload_spec(plate: &str, wells: &[String], readouts: &[Readout]) -> Value {
    json!({ "plate": plate, "wells": wells, "readouts": readouts.iter().map(|r| readout_name(*r)).collect::<Vec<_>>() })
}

/// Checks an answer to `prompt`; returns what is stored: `{"confirmed": true}`, or for an upload the
/// values the prompt asked for (`values[well][readout]`, in the prompt's order) and the file as given.
pub fn check_answer(prompt: &Prompt, content: Option<&str>) -> Result<Value, AnswerError> {
    if prompt.kind != PromptKind::Upload.as_str() {
        return Ok(json!({ "confirmed": true }));
    }
    let content = content.filter(|c| !c.trim().is_empty()).ok_or(AnswerError::NoContent)?;
    let export = ReaderExport::parse(content)?;
    let (wells, readouts) = spec_of(&prompt.spec)?;
    let values = export.require(&wells, &readouts)?;
    Ok(json!({ "values": values, "content": content }))
}

/// The wells and readouts of an upload prompt's spec.
pub fn spec_of(spec: &Value) -> Result<(Vec<String>, Vec<Readout>), AnswerError> {
    let wells: Vec<String> =
        serde_json::from_value(spec["wells"].clone()).map_err(|e| AnswerError::Spec(format!("wells: {e}")))?;
    let readouts = spec["readouts"]
        .as_array()
        .ok_or_else(|| AnswerError::Spec("no readouts".into()))?
        .iter()
        .map(|r| {
            r.as_str().and_then(readout_named).ok_or_else(|| AnswerError::Spec(format!("readout {r} is not known")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((wells, readouts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(kind: PromptKind, spec: Value) -> Prompt {
        Prompt {
            prompt_id: "i1-read".into(),
            kind: kind.as_str().into(),
            text: "Read ASSAY_1".into(),
            spec,
            answer: None,
            answered_by: None,
        }
    }

    #[test]
    fn answers_are_checked_against_what_the_prompt_asks() {
        let wells = vec!["B2".to_string(), "B3".to_string()];
        let spec = upload_spec("ASSAY_1", &wells, &[Readout::Viability, Readout::CellRox]);
        let up = prompt(PromptKind::Upload, spec);
        let file = "well,readout,value\nB2,viability,0.9\nB2,CellROX,100\nB3,viability,0.5\nB3,cellrox,300\n";
        assert_eq!(check_answer(&up, Some(file)).unwrap()["values"], json!([[0.9, 100.0], [0.5, 300.0]]));
        assert_eq!(check_answer(&up, None).unwrap_err(), AnswerError::NoContent);
        assert_eq!(
            check_answer(&up, Some(&file.replace("B3,cellrox,300\n", ""))).unwrap_err().to_string(),
            "the reader export: the export has no CellROX value for well B3"
        );
        assert_eq!(
            check_answer(&up, Some(&file.replace("300", "x"))).unwrap_err().to_string(),
            "the reader export: line 5: column 3: `x` is not a number"
        );
        assert_eq!(check_answer(&prompt(PromptKind::Confirm, json!({})), None).unwrap(), json!({ "confirmed": true }));
    }
}
